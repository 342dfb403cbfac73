"""Our checkpoint format: a ``tf.train.Checkpoint`` folder with ``generator``, ``discriminator`` and
``step`` (the trainer adds its optimizers and data position under the same root), plus
``mefgan.json`` recording the model config and program version.
"""
from __future__ import annotations

import contextlib
import glob
import json
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mefgan_tf import __version__
from mefgan_tf.config import MEFGANConfig
from mefgan_tf.errors import CommandError
from mefgan_tf.files import atomic_dir, atomic_path
from mefgan_tf.images import InputNote, is_image

# TensorFlow (with its protobuf) and the networks (Keras) are imported where a checkpoint is read or
# written: checking a run folder or a model's path must not start TensorFlow or fix Keras's backend.

CHECKPOINT_NAME = "ckpt"
METADATA_FILE = "mefgan.json"
KERAS_GENERATOR = "generator.weights.h5"  # a JAX backend run's latest generator (``training.jax_backend.JaxStore``)
KERAS_WEIGHTS_SUFFIX = ".weights.h5"


def make_checkpoint(**objects):
    """A ``tf.train.Checkpoint`` over named objects (generator=, discriminator=, step=, ...)."""
    import tensorflow as tf

    return tf.train.Checkpoint(**{k: v for k, v in objects.items() if v is not None})


def write_metadata(directory: Path, config: MEFGANConfig, **extra) -> None:
    """Write ``mefgan.json`` (config, version, extras) atomically."""
    text = json.dumps({"mefgan_tf_version": __version__, "config": config.to_dict(), **extra}, indent=2)
    with atomic_path(Path(directory) / METADATA_FILE) as tmp:
        tmp.write_text(text)


def read_metadata(directory: str | Path) -> dict[str, Any]:
    """The contents of ``mefgan.json`` in ``directory`` ({} when there is none); CommandError if damaged."""
    path = Path(directory) / METADATA_FILE
    if not path.exists():
        return {}
    try:
        values = json.loads(path.read_text())
    except (OSError, ValueError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CommandError(f"{path}: damaged ({first_line(err)})") from None
    if not isinstance(values, dict) or not isinstance(values.get("config", {}), dict):
        raise CommandError(f"{path}: damaged (expected a JSON object with a 'config' object)")
    return values


def read_config(directory: str | Path) -> MEFGANConfig:
    """The config saved beside a checkpoint (defaults when there is none), read by any later version:
    see ``MEFGANConfig.from_saved``."""
    values = read_metadata(directory).get("config", {})
    path = Path(directory) / METADATA_FILE
    try:
        return MEFGANConfig.from_saved(values, path)
    except CommandError as err:
        raise CommandError(f"{path}: {err}") from None


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def damage(err: BaseException) -> str:
    """What an exception raised while reading model files says about them, in a few words."""
    import tensorflow as tf

    text = re.sub(r"\{\{function_node [^}]*\}\}\s*|\s*\[Op:\w+\]", "", first_line(err))
    if "Checksum does not match" in text:
        return "damaged: its checksum does not match, so bytes of it were changed (a bad copy or disk?)"
    if isinstance(err, IndexError) or "less bytes than requested" in text:
        return f"truncated ({text})"
    if isinstance(err, (FileNotFoundError, tf.errors.NotFoundError)) or "No such file" in text:
        return f"missing ({text})"
    return f"damaged ({text})"


@contextlib.contextmanager
def reading_model(files: str | Path | Callable[[BaseException], str]) -> Iterator[None]:
    """Turn any error a damaged or incomplete model raises while it is read into one CommandError.

    ``files`` names the files being read, or gives their name from the error. Used around every
    read of checkpoint and SavedModel files, so that no command shows a traceback for them.
    """
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    try:
        yield
    except CommandError:
        raise
    except (tf.errors.OpError, DecodeError, OSError, IndexError, ValueError, KeyError) as err:
        name = files(err) if callable(files) else files
        raise CommandError(f"{name}: {damage(err)}") from None


def checkpoint_files(prefix: str) -> Callable[[BaseException], str]:
    """The file of the checkpoint ``prefix`` that an error is about: its index or its data."""

    def name(err: BaseException) -> str:
        if "sstable" in str(err) or ".index" in str(err):
            return f"{prefix}.index"
        data = sorted(glob.glob(glob.escape(prefix) + ".data-*"))
        return data[0] if len(data) == 1 else f"{prefix}.data-*"

    return name


def save_model_checkpoint(out_dir: str | Path, generator, discriminator=None, step: int = 0) -> Path:
    """Write G (and D) as a fresh checkpoint folder ``out_dir``; it appears complete or not at all."""
    import tensorflow as tf

    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise CommandError(f"{out_dir}: folder exists and is not empty; choose a new --out")
    with atomic_dir(out_dir) as tmp:
        step_var = tf.Variable(step, dtype=tf.int64, trainable=False)
        checkpoint = make_checkpoint(generator=generator, discriminator=discriminator, step=step_var)
        manager = tf.train.CheckpointManager(checkpoint, str(tmp), max_to_keep=1, checkpoint_name=CHECKPOINT_NAME)
        manager.save(checkpoint_number=step)
        write_metadata(tmp, generator.config, step=step)
    return out_dir


def resolve_checkpoint(path: str | Path) -> str:
    """A checkpoint prefix from a folder (its latest checkpoint) or a prefix; CommandError if none."""
    path = Path(path)
    if path.is_dir():
        return latest_in_folder(path)
    if Path(str(path) + ".index").exists():
        return str(path)
    raise CommandError(f"{path}: {not_a_checkpoint(path)}")


def latest_in_folder(folder: Path) -> str:
    """The checkpoint that the folder's ``checkpoint`` file names, or, when that one is missing (or
    there is no such file), its highest step, with a note; CommandError when it holds none."""
    named = check_state_file(folder / "checkpoint")
    if named is not None and Path(named + ".index").exists():
        return named
    steps = sorted((p for p in folder.glob(f"{CHECKPOINT_NAME}-*.index") if p.stem.split("-")[-1].isdigit()),
                   key=lambda p: int(p.stem.split("-")[-1]))
    if not steps:
        raise CommandError(f"{folder}: no checkpoint in this folder")
    chosen = str(steps[-1].with_suffix(""))
    if named is not None:
        warnings.warn(f"{folder / 'checkpoint'} names {Path(named).name}, which is missing; using {Path(chosen).name}, "
                      "the latest there is", InputNote, stacklevel=3)
    return chosen


def check_generator_source(path: str | Path) -> None:
    """CommandError, before TensorFlow starts, for a path that cannot hold a generator: neither a
    folder, a checkpoint prefix nor a Keras weights file (what it is instead, ``not_a_checkpoint``).
    A model's name (``shipped``) is the caller's to resolve (``models.named_model``)."""
    path = Path(path)
    if path.is_dir() or Path(str(path) + ".index").exists() or keras_generator_weights(path) is not None:
        return
    raise CommandError(f"{path}: {not_a_checkpoint(path)}")


def not_a_checkpoint(path: Path) -> str:
    """Why ``path``, which is neither a checkpoint folder nor a prefix, is not one, in a few words."""
    expected = "expected a run folder, a checkpoint prefix such as run/ckpt-5, or a Keras .weights.h5 file"
    if path.suffix.lower() == ".tflite":
        return f"a LiteRT model holds no trainable weights; give the checkpoint it was exported from ({expected})"
    if is_image(path) and path.exists():
        return f"is an image, not a model ({expected})"
    if path.exists():
        return f"is a file, not a checkpoint ({expected})"
    return "no such checkpoint folder or prefix"


def check_state_file(path: Path) -> str | None:
    """The checkpoint prefix that the ``checkpoint`` state file ``path`` names (None without one);
    CommandError unless it is readable text of its kind."""
    from google.protobuf import text_format
    from tensorflow.python.checkpoint.checkpoint_management import CheckpointState

    if not path.exists():
        return None
    state = CheckpointState()
    try:
        text_format.Parse(path.read_text(), state)
    except UnicodeDecodeError:
        raise CommandError(f"{path}: damaged (not a text file)") from None
    except (OSError, text_format.ParseError) as err:
        raise CommandError(f"{path}: damaged ({first_line(err)})") from None
    named = state.model_checkpoint_path
    return None if not named else str(path.parent / named) if not Path(named).is_absolute() else named


def keras_generator_weights(path: str | Path) -> Path | None:
    """The Keras weight file that ``path`` names: itself (``*.weights.h5``) or a JAX backend run
    folder's latest generator; None for a TensorFlow checkpoint (or nothing)."""
    path = Path(path)
    if path.name.endswith(KERAS_WEIGHTS_SUFFIX) and path.is_file():
        return path
    if path.is_dir() and (path / KERAS_GENERATOR).is_file() and not (path / "checkpoint").exists():
        return path / KERAS_GENERATOR
    return None


def load_keras_generator(weights: Path, attention_chunk: int | None = None):
    """A generator from a Keras weight file, with the config of the run folder beside it (if any)."""
    from mefgan_tf.generator import build_generator

    config = read_config(weights.parent) if (weights.parent / METADATA_FILE).is_file() else None
    generator = build_generator(config, attention_chunk=attention_chunk)
    try:
        generator.load_weights(weights)
    except (ValueError, OSError, KeyError) as err:
        raise CommandError(f"{weights}: not the Keras weights of a MEF-GAN generator ({first_line(err)})") from None
    return generator


def load_generator(path: str | Path, attention_chunk: int | None = None):
    """Restore the generator of a mefgan-tf run or checkpoint (folder or prefix, either backend) or
    of a generator's Keras weight file; ``attention_chunk`` as ``build_generator``'s. A model's name
    (``shipped``) is the caller's to resolve (``models.named_model``)."""
    from mefgan_tf.generator import build_generator

    weights = keras_generator_weights(path)
    if weights is not None:
        return load_keras_generator(weights, attention_chunk)
    prefix = resolve_checkpoint(path)
    folder = Path(path) if Path(path).is_dir() else Path(prefix).parent
    generator = build_generator(read_config(folder), attention_chunk=attention_chunk)
    with reading_model(checkpoint_files(prefix)):
        status = make_checkpoint(generator=generator).restore(prefix)
    try:
        status.expect_partial().assert_existing_objects_matched()
    except AssertionError as err:
        raise CommandError(f"{path}: checkpoint does not hold a MEF-GAN generator ({str(err).splitlines()[0]})") from None
    return generator


def import_keras_weights(
    out_dir: str | Path,
    generator_weights: str | Path,
    discriminator_weights: str | Path | None = None,
    step: int = 0,
    config: MEFGANConfig | None = None,
) -> Path:
    """Turn Keras weight files (e.g. from ``training.jax_backend``, any backend) into a mefgan-tf checkpoint folder."""
    from mefgan_tf.discriminator import build_discriminator
    from mefgan_tf.generator import build_generator

    generator = build_generator(config)
    generator.load_weights(generator_weights)
    discriminator = None
    if discriminator_weights is not None:
        discriminator = build_discriminator(config)
        discriminator.load_weights(discriminator_weights)
    return save_model_checkpoint(out_dir, generator, discriminator, step=step)
