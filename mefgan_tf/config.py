"""The settings of MEF-GAN: ``NetworkConfig`` defines the networks, ``MEFGANConfig`` a training run.

Defaults are the values of the authors' TF1 code (where the paper prints other values, ``PAPER``
has them). ``NetworkConfig`` is all that G and D need besides their weights: it is what their
Keras config holds. ``MEFGANConfig`` adds the losses, the optimisers and the run management; it
is what ``mefgan train`` resolves from ``--config``, the flags and ``--set``, prints with
``--print-config`` and saves as the flat ``"config"`` object of a run's ``mefgan.json`` (its
``network`` is the ``NetworkConfig`` part).

Saved configs are read leniently (``MEFGANConfig.from_saved``): keys of older versions that were
never read (``RETIRED_KEYS``) are dropped, unknown keys (of a newer version) are ignored with a
``ConfigWarning``. Settings given by the user (``replace``, ``from_file``) are strict: an unknown
key or a value of the wrong type is a CommandError.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import types
import typing
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mefgan_tf.errors import CommandError, quoted

# ITU-R BT.601 luma as the original writes it: its grey conversion (the gradient loss) and the
# mean luminance that orders exposures (``images.luminance``, ``scenes``).
BT601_LUMA = (0.2989, 0.5870, 0.1140)
# The paper's values where they differ from the authors' code (``mefgan train --paper``).
PAPER: dict[str, Any] = {"learning_rate": 6e-4, "epochs": 2}
# Keys that configs written by earlier versions hold but no version ever read: dropped on reading.
RETIRED_KEYS = frozenset({"shuffle_buffer", "extra"})

_AT_LEAST_1 = (lambda v: v >= 1, "must be at least 1")
_POSITIVE = (lambda v: v > 0, "must be positive")
_NOT_NEGATIVE = (lambda v: v >= 0, "must be 0 or more")
_FRACTION = (lambda v: 0 <= v <= 1, "must be in [0, 1]")
# The values each numeric config key allows: key -> (test, what the value must be).
RANGES: dict[str, tuple[Any, str]] = {
    **dict.fromkeys(
        ("patch_size", "attention_chunk", "batch_size", "epochs", "balance_every", "max_d_updates", "max_g_updates",
         "checkpoint_every", "summary_every", "image_summary_every", "keep_checkpoints"), _AT_LEAST_1),
    **dict.fromkeys(
        ("bn_epsilon", "g_kernel_stddev", "d_kernel_stddev", "eps", "learning_rate", "lr_decay_rate", "adam_epsilon",
         "d_lr_factor", "clip_value"), _POSITIVE),
    **dict.fromkeys(("content_weight", "gradient_weight", "mef_ssim_weight", "checkpoint_minutes"), _NOT_NEGATIVE),
    **dict.fromkeys(("leaky_slope", "bn_momentum", "g_beta1", "g_beta2", "balance_high", "balance_low", "grey_fraction"),
                    _FRACTION),
    "seed": (lambda v: 0 <= v < 2**32, "must be in [0, 2**32)"),
}
# The largest value of each numeric key that is not bounded above by its range: beyond these, a
# library fails (memory, overflow) long after the start, or the run could never end.
MAXIMA: dict[str, float] = {
    "patch_size": 4096, "attention_chunk": 2**20, "batch_size": 2**16, "epochs": 10**6, "balance_every": 10**6,
    "max_d_updates": 10**6, "max_g_updates": 10**6, "checkpoint_every": 10**9, "summary_every": 10**9,
    "image_summary_every": 10**9, "keep_checkpoints": 10**4, "bn_epsilon": 1.0, "g_kernel_stddev": 100.0,
    "d_kernel_stddev": 100.0, "eps": 1.0, "learning_rate": 10.0, "lr_decay_rate": 10.0, "adam_epsilon": 1.0,
    "d_lr_factor": 1000.0, "clip_value": 1e6, "content_weight": 1e6, "gradient_weight": 1e6, "mef_ssim_weight": 1e6,
    "checkpoint_minutes": 1e6,
}
MAX_FILE_BYTES = 2**20  # a config file is a few dozen lines
MAX_DEPTH = 4  # nesting of a config file's values (a key's value is a number or a list of numbers)


@dataclass(frozen=True)
class AttentionBlocks:
    """The one attention block policy: how many query rows have their scores held at once, by where
    the attention runs, and how many keys a block of scores spans. Memory and speed, never results."""

    training: int = 1024  # ``NetworkConfig.attention_chunk``'s default (a 144 px patch has 324 rows: one block)
    inference: int = 2048  # fusion on CPU, the fastest in benchmarks/bench_fusion.py; a progress step each
    litert: int = 256  # the static block of a LiteRT file's WHILE loop (phones have little memory)
    keys: int = 1024  # keys per block of flash attention: a block of scores is rows x keys floats


ATTENTION_BLOCKS = AttentionBlocks()


class ConfigWarning(UserWarning):
    """A saved config holds keys this version does not know (they are ignored)."""


@dataclass(frozen=True)
class NetworkConfig:
    """What defines G and D besides their weights (the first fields of ``MEFGANConfig``)."""

    patch_size: int = 144  # D's input side (its dense layer depends on it)
    leaky_slope: float = 0.2
    bn_momentum: float = 0.99
    bn_epsilon: float = 1e-3
    g_kernel_stddev: float = 0.5
    d_kernel_stddev: float = 0.1
    attention_chunk: int = ATTENTION_BLOCKS.training  # attention query rows computed at once (memory, not results)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class MEFGANConfig:
    """The settings of a training run: the network, the losses, the optimisers, the run management.

    The paper's variant differs in ``learning_rate`` (6e-4) and ``epochs`` (2): see ``paper()``.
    """

    # Network: NetworkConfig's fields, in its order, with its defaults
    patch_size: int = NetworkConfig.patch_size
    leaky_slope: float = NetworkConfig.leaky_slope
    bn_momentum: float = NetworkConfig.bn_momentum
    bn_epsilon: float = NetworkConfig.bn_epsilon
    g_kernel_stddev: float = NetworkConfig.g_kernel_stddev
    d_kernel_stddev: float = NetworkConfig.d_kernel_stddev
    attention_chunk: int = NetworkConfig.attention_chunk

    # Losses
    eps: float = 1e-8
    content_weight: float = 500.0  # lambda
    gradient_weight: float = 0.6  # xi
    grey_weights: tuple[float, float, float] = BT601_LUMA
    mef_ssim_weight: float = 0.0  # mu: G also minimises mu * (1 - MEF-SSIM against its inputs); 0 = the original

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
    checkpoint_minutes: float = 0.0  # also checkpoint when this many minutes passed since the last (0: off)
    summary_every: int = 10
    image_summary_every: int = 100
    keep_checkpoints: int = 5
    random_flips: bool = False
    grey_fraction: float = 0.0  # share of training patches turned grey (all three images), for neutral output
    frozen_statistics: bool = False  # G's batch norm normalises with its moving statistics while training, as it fuses
    seed: int | None = None

    @property
    def network(self) -> NetworkConfig:
        """The part of this config that defines the networks."""
        return NetworkConfig(**{name: getattr(self, name) for name in network_fields()})

    @classmethod
    def paper(cls, **overrides: Any) -> MEFGANConfig:
        """The values printed in the paper where they differ from the code."""
        return cls(**{**PAPER, **overrides})

    def replace(self, **overrides: Any) -> MEFGANConfig:
        """A copy with ``overrides``; CommandError for unknown keys and values of the wrong type."""
        unknown = set(overrides) - set(field_types())
        if unknown:
            raise CommandError(f"unknown config key(s): {quoted(', '.join(sorted(map(str, unknown))))}")
        checked = {}
        for key, value in overrides.items():
            try:
                checked[key] = checked_value(key, value)
            except CommandError as err:
                raise CommandError(f"{key}: {err}") from None
        return dataclasses.replace(self, **checked)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> MEFGANConfig:
        """The defaults with ``values``: retired keys dropped; CommandError for unknown keys and
        values of the wrong type."""
        return cls().replace(**{k: v for k, v in values.items() if k not in RETIRED_KEYS})

    @classmethod
    def from_saved(cls, values: dict[str, Any], source: str | Path = "saved config") -> MEFGANConfig:
        """A config saved by any version (``mefgan.json``, a network's Keras config): retired keys
        dropped, unknown keys ignored with a ``ConfigWarning`` naming ``source``; CommandError for
        values of the wrong type."""
        unknown = sorted(set(values) - set(field_types()) - RETIRED_KEYS)
        if unknown:
            warnings.warn(
                f"{source}: ignoring unknown config key(s) {', '.join(unknown)} (written by a newer mefgan-tf?)",
                ConfigWarning,
                stacklevel=2,
            )
        return cls.from_dict({k: v for k, v in values.items() if k not in unknown})

    @classmethod
    def of(cls, config: MEFGANConfig | NetworkConfig | None) -> MEFGANConfig:
        """``config`` as a run config (the defaults around a ``NetworkConfig``; None: the defaults)."""
        if isinstance(config, NetworkConfig):
            return cls(**config.to_dict())
        return config if config is not None else cls()

    @classmethod
    def from_file(cls, path: str | Path) -> MEFGANConfig:
        """The defaults with the settings of a YAML or JSON file (``file_settings``)."""
        return cls().replace(**file_settings(path))


def file_settings(path: str | Path) -> dict[str, Any]:
    """The settings a YAML or JSON file gives, each checked (type and range): every key it names,
    defaults included, so that a file can set a resumed run's value back to the default.
    CommandError naming the file and the key."""
    from mefgan_tf.files import check_regular

    path = Path(path)
    check_regular(path)
    if path.is_file() and path.stat().st_size > MAX_FILE_BYTES:
        raise CommandError(f"{path}: {path.stat().st_size / 2**20:.1f} MB is too large for a config file (at most 1 MB)")
    try:
        text = path.read_text()
    except OSError as err:
        raise CommandError(f"{path}: cannot read config ({err.strerror})") from None
    except UnicodeDecodeError:
        raise CommandError(f"{path}: not a text file (expected YAML or JSON)") from None
    try:
        values = (load_yaml(text) if path.suffix.lower() in (".yaml", ".yml") else load_json(text)) or {}
    except CommandError as err:
        raise CommandError(f"{path}: {err}") from None
    except Exception as err:  # noqa: BLE001 - any parse error is the user's file
        raise CommandError(f"{path}: not valid {path.suffix.lstrip('.') or 'JSON'}: {err}".splitlines()[0][:200]) from None
    if not isinstance(values, dict):
        raise CommandError(f"{path}: expected a mapping of config keys")
    settings = {}
    for key, value in values.items():
        if key in RETIRED_KEYS:
            continue
        if key not in field_types():
            raise CommandError(f"{path}: unknown config key {quoted(key)} (see `mefgan train --print-config`)")
        try:
            settings[key] = checked_value(str(key), value)
        except CommandError as err:
            raise CommandError(f"{path}: {key}: {err}") from None
    return settings


def load_yaml(text: str) -> Any:
    """A YAML document's value, safely: CommandError for an alias (``*name``: a few bytes of them can
    expand to gigabytes) and for values nested deeper than ``MAX_DEPTH``."""
    import yaml

    class Loader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                raise CommandError("YAML aliases (*name) are not accepted in settings: write each value out")
            Loader.depth += 1
            try:
                if Loader.depth > MAX_DEPTH + 1:
                    raise CommandError(f"values are nested more than {MAX_DEPTH} deep; settings are numbers or lists")
                return super().compose_node(parent, index)
            finally:
                Loader.depth -= 1

    return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader


def load_json(text: str) -> Any:
    """A JSON document's value; CommandError for values nested deeper than ``MAX_DEPTH``."""
    deepest = depth = 0
    for char in text:  # brackets inside strings count too: no setting holds a bracket
        depth += (char in "[{") - (char in "]}")
        deepest = max(deepest, depth)
    if deepest > MAX_DEPTH + 1:
        raise CommandError(f"values are nested more than {MAX_DEPTH} deep; settings are numbers or lists")
    return json.loads(text)


@functools.cache
def network_fields() -> tuple[str, ...]:
    """The names of ``NetworkConfig``'s fields."""
    return tuple(f.name for f in dataclasses.fields(NetworkConfig))


@functools.cache
def field_types() -> dict[str, Any]:
    """The type of every config field, by name."""
    hints = typing.get_type_hints(MEFGANConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(MEFGANConfig)}


def field_value(key: str, value: Any) -> Any:
    """``value`` as config field ``key`` holds it (ints as floats, lists as tuples); CommandError
    saying what was expected when it has another type."""
    if key not in field_types():
        raise CommandError(f"unknown config key {quoted(key)} (see `mefgan train --print-config`)")
    return _as_type(value, field_types()[key])


def range_problem(key: str, value: Any) -> str | None:
    """Why ``value`` (of the right type) is out of range for config key ``key``; None when it is in."""
    rule = RANGES.get(key)
    if rule is None or value is None:
        return None
    allowed, problem = rule
    if not allowed(value):
        return problem
    most = MAXIMA.get(key)
    return f"must be at most {most:g}" if most is not None and value > most else None


def checked_value(key: str, value: Any) -> Any:
    """``field_value`` that is also in range; the CommandError says ``<value> <problem>``."""
    typed = field_value(key, value)
    problem = range_problem(key, typed)
    if problem:
        raise CommandError(f"{typed!r} {problem}")
    return typed


def _as_type(value: Any, kind: Any) -> Any:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        try:
            return _as_type(value, next(a for a in args if a is not type(None)))
        except CommandError:
            raise CommandError(f"expected {_describe(kind)}, got {quoted(value)}") from None
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
    raise CommandError(f"expected {_describe(kind)}, got {quoted(value)}")


def _describe(kind: Any) -> str:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_describe(a) for a in args)
    if origin is tuple:
        return f"a list of {len(args)} {'numbers' if all(a is float for a in args) else 'values'}"
    return {bool: "true or false", int: "an integer", float: "a finite number", type(None): "null"}.get(origin or kind, str(kind))
