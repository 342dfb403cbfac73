"""Every hyperparameter of MEF-GAN in one dataclass (values from the original code; see SPEC)."""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mefgan_tf.errors import CommandError


@dataclass
class MEFGANConfig:
    """Model and training settings. Defaults reproduce the authors' TF1 code.

    The paper's variants differ in ``learning_rate`` (6e-4) and ``epochs`` (2): see ``paper()``.
    """

    # Model
    patch_size: int = 144
    leaky_slope: float = 0.2
    bn_momentum: float = 0.99
    bn_epsilon: float = 1e-3
    g_kernel_stddev: float = 0.5
    d_kernel_stddev: float = 0.1
    attention_chunk: int = 1024

    # Losses
    eps: float = 1e-8
    content_weight: float = 500.0  # lambda
    gradient_weight: float = 0.6  # xi
    grey_weights: tuple[float, float, float] = (0.2989, 0.5870, 0.1140)

    # Optimisation
    learning_rate: float = 3e-4
    lr_decay_rate: float = 0.7  # per epoch, continuous
    g_beta1: float = 0.0
    g_beta2: float = 0.9
    adam_epsilon: float = 1e-8  # TF1 AdamOptimizer's default (Keras' is 1e-7)
    d_lr_factor: float = 2.0  # D's SGD rate is this times the G rate
    clip_value: float = 8.0
    batch_size: int = 19  # global batch
    epochs: int = 4
    balance_every: int = 3
    balance_high: float = 0.6
    balance_low: float = 0.4
    max_d_updates: int = 4
    max_g_updates: int = 8

    # Run management
    checkpoint_every: int = 100
    summary_every: int = 10
    image_summary_every: int = 100
    keep_checkpoints: int = 5
    shuffle_buffer: int = 2048
    random_flips: bool = False
    seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def paper(cls, **overrides: Any) -> MEFGANConfig:
        """The values printed in the paper where they differ from the code."""
        return cls(**{"learning_rate": 6e-4, "epochs": 2, **overrides})

    def replace(self, **overrides: Any) -> MEFGANConfig:
        """A copy with ``overrides``; CommandError for unknown keys and values of the wrong type."""
        unknown = set(overrides) - set(field_types())
        if unknown:
            raise CommandError(f"unknown config key(s): {', '.join(sorted(unknown))}")
        checked = {}
        for key, value in overrides.items():
            try:
                checked[key] = field_value(key, value)
            except CommandError as err:
                raise CommandError(f"{key}: {err}") from None
        return dataclasses.replace(self, **checked)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> MEFGANConfig:
        values = dict(values)
        if "grey_weights" in values:
            values["grey_weights"] = tuple(values["grey_weights"])
        return cls().replace(**values)

    @classmethod
    def from_file(cls, path: str | Path) -> MEFGANConfig:
        """Read a YAML or JSON file of overrides."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as err:
            raise CommandError(f"{path}: cannot read config ({err.strerror})") from None
        try:
            if path.suffix.lower() in (".yaml", ".yml"):
                import yaml

                values = yaml.safe_load(text) or {}
            else:
                values = json.loads(text)
        except Exception as err:  # noqa: BLE001 - any parse error is the user's file
            raise CommandError(f"{path}: not valid {path.suffix.lstrip('.') or 'JSON'}: {err}") from None
        if not isinstance(values, dict):
            raise CommandError(f"{path}: expected a mapping of config keys")
        try:
            return cls.from_dict(values)
        except CommandError as err:
            raise CommandError(f"{path}: {err}") from None


@functools.cache
def field_types() -> dict[str, Any]:
    """The type of every config field, by name."""
    hints = typing.get_type_hints(MEFGANConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(MEFGANConfig)}


def field_value(key: str, value: Any) -> Any:
    """``value`` as config field ``key`` holds it (ints as floats, lists as tuples); CommandError
    saying what was expected when it has another type."""
    if key not in field_types():
        raise CommandError(f"unknown config key {key!r} (see `mefgan train --print-config`)")
    return _as_type(value, field_types()[key])


def _as_type(value: Any, kind: Any) -> Any:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        try:
            return _as_type(value, next(a for a in args if a is not type(None)))
        except CommandError:
            raise CommandError(f"expected {_describe(kind)}, got {value!r}") from None
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and number and float(value).is_integer():
        return int(value)
    if kind is float and number and math.isfinite(value):
        return float(value)
    if origin is tuple and isinstance(value, (list, tuple)) and len(value) == len(args):
        try:
            return tuple(_as_type(v, a) for v, a in zip(value, args))
        except CommandError:
            pass
    if origin is dict and isinstance(value, dict):
        return value
    raise CommandError(f"expected {_describe(kind)}, got {value!r}")


def _describe(kind: Any) -> str:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_describe(a) for a in args)
    if origin is tuple:
        return f"a list of {len(args)} {'numbers' if all(a is float for a in args) else 'values'}"
    return {bool: "true or false", int: "an integer", float: "a finite number", dict: "a mapping",
            type(None): "null"}.get(origin or kind, str(kind))
