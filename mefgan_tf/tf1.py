"""The authors' TF1 checkpoint: the variable-name map, and its import (``mefgan import-tf1``).

``TF1_UNITS`` is the one table that ties each of our layers to the original's variable scopes.
The original creates each convolution's kernel and bias in a uniquified scope (``Generator_N/...``)
while its power-iteration vector ``u`` and batch norm live under ``Generator/.../b`` (the code
re-enters ``Generator`` with ``reuse``); the discriminator's ``u`` vectors are ``b0``..``b4``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mefgan_tf.errors import CommandError

OBJECT_GRAPH = "_CHECKPOINTABLE_OBJECT_GRAPH"  # the entry every TF2 object-based checkpoint has
LISTED_NAMES = 5  # variable names a message lists before "and N more"

# Our layer path -> (TF1 scope of kernel and bias, TF1 scope of u and batch_normalization or None).
TF1_UNITS: dict[str, tuple[str, str | None]] = {
    "generator/local_conv1": ("Generator/Local_net/conv1", "Generator/Local_net/conv1/b"),
    "generator/local_conv2": ("Generator_1/Local_net/conv2", "Generator/Local_net/conv2/b"),
    "generator/local_conv3": ("Generator_2/Local_net/conv3", "Generator/Local_net/conv3/b"),
    "generator/local_conv4": ("Generator_3/Local_net/conv4", "Generator/Local_net/conv4/b"),
    "generator/local_conv5": ("Generator_4/Local_net/conv5", "Generator/Local_net/conv5/b"),
    "generator/encoder_conv1": ("Generator_5/Sa_net/encoder/conv1", "Generator/Sa_net/encoder/conv1/b"),
    "generator/encoder_conv2": ("Generator_6/Sa_net/encoder/conv2", "Generator/Sa_net/encoder/conv2/b"),
    "generator/self_attention/f_conv": ("Generator_7/self_attention/f_conv", "Generator/self_attention/f_conv/f_conv"),
    "generator/self_attention/g_conv": ("Generator_7/self_attention/g_conv", "Generator/self_attention/g_conv/g_conv"),
    "generator/self_attention/h_conv": ("Generator_7/self_attention/h_conv", "Generator/self_attention/h_conv/h_conv"),
    "generator/decoder_conv1": ("Generator_8/Sa_net/decoder/conv1", "Generator/Sa_net/decoder/conv1/b"),
    "generator/decoder_conv2": ("Generator_9/Sa_net/decoder/conv2", "Generator/Sa_net/decoder/conv2/b"),
    "generator/merge_conv1": ("Generator_10/Merge_net/conv1", "Generator/Merge_net/conv1/b"),
    "generator/merge_conv3": ("Generator_11/Merge_net/conv3", "Generator/Merge_net/conv3/b"),
    "generator/merge_conv4": ("Generator_12/Merge_net/conv4", "Generator/Merge_net/conv4/b"),
    "discriminator/conv1": ("Discriminator/conv1", "Discriminator/b0"),
    "discriminator/conv2": ("Discriminator/conv2", "Discriminator/b1"),
    "discriminator/conv3": ("Discriminator/conv3", "Discriminator/b2"),
    "discriminator/conv4": ("Discriminator/conv4", "Discriminator/b3"),
    "discriminator/conv5": ("Discriminator/conv5", "Discriminator/b4"),
    "discriminator/conv6": ("Discriminator/conv6", None),
    "discriminator/dense": ("Discriminator/flatten1/dense", None),
    "generator/self_attention": ("Generator_7/self_attention", None),
}
# Our weight name (last path component) -> which TF1 scope holds it and under what name.
_WEIGHT_SCOPES = {
    "kernel": (0, "kernel"),
    "bias": (0, "bias"),
    "gamma": (0, "gamma"),
    "u": (1, "u"),
    "bn/gamma": (1, "batch_normalization/gamma"),
    "bn/beta": (1, "batch_normalization/beta"),
    "bn/moving_mean": (1, "batch_normalization/moving_mean"),
    "bn/moving_variance": (1, "batch_normalization/moving_variance"),
}
# Entries of the original checkpoint that belong to its optimizers: Adam slots, the beta powers
# and the global step (`Variable`, imported as our step counter).
GLOBAL_STEP = "Variable"
OPTIMIZER_SUFFIXES = ("/Adam", "/Adam_1")
OPTIMIZER_NAMES = ("beta1_power", "beta2_power", GLOBAL_STEP)


def is_optimizer_entry(name: str) -> bool:
    return name in OPTIMIZER_NAMES or name.endswith(OPTIMIZER_SUFFIXES)


def tf1_name(variable_path: str) -> str:
    """The original checkpoint's name for one of our variables (``generator/merge_conv1/u`` ...)."""
    for layer, scopes in sorted(TF1_UNITS.items(), key=lambda item: -len(item[0])):
        if not variable_path.startswith(layer + "/"):
            continue
        weight = variable_path[len(layer) + 1 :]
        if weight not in _WEIGHT_SCOPES:
            continue
        index, name = _WEIGHT_SCOPES[weight]
        if scopes[index] is None:
            break
        return f"{scopes[index]}/{name}"
    raise KeyError(f"no TF1 name for variable {variable_path!r}")


def variable_map(*models) -> dict[str, object]:
    """TF1 name -> our variable, over all weights of ``models`` (G and D)."""
    mapping: dict[str, object] = {}
    for model in models:
        for variable in model.weights:
            name = tf1_name(variable.path)
            if name in mapping:
                raise KeyError(f"two variables map to {name}")
            mapping[name] = variable
    return mapping


def read_tf1_checkpoint(prefix: str | Path) -> dict[str, np.ndarray]:
    """All tensors of a TF1 checkpoint (``model.ckpt`` prefix, or its folder)."""
    import tensorflow as tf

    prefix = str(prefix)
    if Path(prefix).is_dir():
        found = tf.train.latest_checkpoint(prefix)
        if found is None:
            raise CommandError(f"{prefix}: no checkpoint found in this folder")
        prefix = found
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as err:
        raise CommandError(f"{prefix}: not a readable TF checkpoint ({str(err).splitlines()[0]})") from None
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def listed(names: list[str], shown: int = LISTED_NAMES) -> str:
    """The first ``shown`` names, and how many more: a message stays one readable line."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def checkpoint_kind(tensors: dict[str, np.ndarray]) -> str | None:
    """What a checkpoint that is not the original's is, from its entries (None: a TF1 checkpoint)."""
    if OBJECT_GRAPH not in tensors:
        return None
    if any(name.startswith(("generator/", "discriminator/")) for name in tensors):
        return ("a mefgan-tf checkpoint already: `mefgan fuse --model` and `mefgan export` load it as it is; "
                "import-tf1 converts the authors' TF1 checkpoints (model.ckpt)")
    return "an object-based TensorFlow 2 checkpoint, not the authors' TF1 MEF-GAN checkpoint (model.ckpt)"


def check_tensors(tensors: dict[str, np.ndarray], targets: dict[str, object]) -> None:
    """Raise a CommandError naming every missing or mis-shaped variable."""
    missing = sorted(set(targets) - set(tensors))
    wrong = sorted(
        f"{name} {list(tensors[name].shape)} (expected {list(targets[name].shape)})"
        for name in set(targets) & set(tensors)
        if tuple(tensors[name].shape) != tuple(targets[name].shape)
    )
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} variable(s): {listed(missing)}")
    if wrong:
        problems.append(f"wrong shape: {listed(wrong)}")
    if problems:
        raise CommandError("; ".join(problems))


def assign_tf1_tensors(tensors: dict[str, np.ndarray], generator, discriminator) -> int:
    """Load the original's tensors into our G and D; returns the global step (0 if absent)."""
    targets = variable_map(generator, discriminator)
    check_tensors(tensors, targets)
    for name, variable in targets.items():
        variable.assign(tensors[name])
    return int(tensors.get(GLOBAL_STEP, 0))


def unused_entries(tensors: dict[str, np.ndarray], generator, discriminator) -> list[str]:
    """Checkpoint entries that are neither optimizer state nor one of our variables."""
    targets = variable_map(generator, discriminator)
    return sorted(n for n in tensors if n not in targets and not is_optimizer_entry(n))


def import_tf1(prefix: str | Path, out_dir: str | Path) -> Path:
    """Convert an original checkpoint into a mefgan-tf checkpoint directory; returns its path."""
    from mefgan_tf.checkpoint import save_model_checkpoint
    from mefgan_tf.discriminator import build_discriminator
    from mefgan_tf.generator import build_generator

    tensors = read_tf1_checkpoint(prefix)
    kind = checkpoint_kind(tensors)
    if kind:
        raise CommandError(f"{prefix}: {kind}")
    generator, discriminator = build_generator(), build_discriminator()
    try:
        step = assign_tf1_tensors(tensors, generator, discriminator)
    except CommandError as err:
        raise CommandError(f"{prefix}: {err}") from None
    extra = unused_entries(tensors, generator, discriminator)
    if extra:
        raise CommandError(f"{prefix}: unexpected variable(s) not in MEF-GAN: {listed(extra)}")
    return save_model_checkpoint(out_dir, generator, discriminator, step=step)
