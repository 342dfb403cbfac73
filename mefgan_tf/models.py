"""Finding and loading a model to fuse with: one place for every kind a ``--model`` may name.

* a mefgan-tf checkpoint folder or prefix (``mefgan train``, ``mefgan import-tf1``); the shipped
  generator, inside this package, is one (``DEFAULT_MODEL``);
* a SavedModel from ``mefgan export``, or a TensorFlow Serving base folder of numbered versions of
  it (the highest number, as TensorFlow Serving picks);
* a ``.tflite`` file from ``mefgan export --tflite``, run by LiteRT.

``load_stages`` returns the fusion stages of any of them (``stages.Stages``; ``fusion`` runs them) and
``load_fuser`` a ``fusion.Fuser`` of them: models load, then build the fuser; the fusion core loads nothing.
A process keeps the last few TensorFlow models it loaded, so that fusing again with the same model
(``mefgan_tf.fuse(..., model=path)`` in a loop, several commands in one process) neither reloads
nor retraces it; a model whose files changed is loaded again.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from mefgan_tf.checkpoint import checkpoint_files, load_generator, reading_model
from mefgan_tf.config import ATTENTION_BLOCKS
from mefgan_tf.errors import CommandError, require
from mefgan_tf.files import check_regular
from mefgan_tf.fusion import DEFAULT_OPTIONS, Fuser, FusionOptions
from mefgan_tf.images import is_image
from mefgan_tf.stages import Stages, TensorFlowStages, generator_stages
from mefgan_tf.tflite import LiteModel

# TensorFlow is imported where a SavedModel is loaded: choosing and checking a model must not start it.

# The generator shipped inside the package (a checkpoint folder; checkpoints/reference in the repository).
DEFAULT_MODEL = Path(__file__).resolve().parent / "shipped_generator"
SHIPPED = "shipped"  # the name of the shipped generator wherever a model is asked for
TFLITE_SUFFIX = ".tflite"
LOADED_MODELS_KEPT = 4  # TensorFlow models kept loaded per process (a generator is about 10 MB)


def named_model(path: str | os.PathLike | None) -> Path:
    """The model that ``path`` names: ``SHIPPED`` (or None) is the shipped generator, anything else a path
    (``./shipped`` for a folder of that name)."""
    return DEFAULT_MODEL if path is None or str(path) == SHIPPED else Path(path)


def no_model_error(path: Path) -> CommandError:
    if path == DEFAULT_MODEL:
        return CommandError(
            f"the shipped generator is missing at {path} (reinstall mefgan-tf); or pass --model with a mefgan-tf "
            "checkpoint folder, an exported SavedModel or a .tflite file"
        )
    return CommandError(f"{path}: no such model (expected a checkpoint folder/prefix, a SavedModel folder or a .tflite file)")


def is_saved_model(path: str | os.PathLike) -> bool:
    return (Path(path) / "saved_model.pb").is_file()


def is_tflite(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() == TFLITE_SUFFIX


def saved_model_versions(path: Path) -> list[tuple[int, Path]]:
    """The numbered SavedModel versions in ``path`` (a TensorFlow Serving base folder), lowest first."""
    if not path.is_dir() or is_saved_model(path):
        return []
    return sorted((int(p.name), p) for p in path.iterdir() if p.name.isdigit() and is_saved_model(p))


def model_version(path: str | os.PathLike | None) -> tuple[Path, str]:
    """(model path, version): a base folder of numbered SavedModels gives its highest version, a
    numbered SavedModel folder its number, anything else version 1. CommandError if absent."""
    model = named_model(path)
    check_regular(model)
    if not model.exists() and not Path(str(model) + ".index").exists():
        raise no_model_error(model)
    if model.is_file() and not is_tflite(model) and model.suffix.lower() != ".h5":  # .weights.h5: a generator
        kind = "an image" if is_image(model) else "a file"
        raise CommandError(f"{model}: is {kind}, not a model (expected a checkpoint folder/prefix, a SavedModel folder "
                           f"or a .tflite file; '{SHIPPED}' for the shipped generator)")
    versions = saved_model_versions(model)
    if versions:
        return versions[-1][1], str(versions[-1][0])
    if is_saved_model(model) and model.name.isdigit():
        return model, str(int(model.name))
    return model, "1"


def resolve_model(path: str | os.PathLike | None) -> Path:
    """The model to load for ``path`` (default: the shipped generator; a versions folder: its newest
    version); CommandError if it is absent."""
    return model_version(path)[0]


def saved_model_files(model: Path) -> Callable[[BaseException], str]:
    """The file of the SavedModel ``model`` that a loading error is about."""
    variables = checkpoint_files(str(model / "variables" / "variables"))

    def name(err: BaseException) -> str:
        return str(model / "saved_model.pb") if "saved_model.pb" in str(err) else variables(err)

    return name


def load_saved_model(model: Path):
    """``tf.saved_model.load`` of ``model``; CommandError naming the file if it is damaged or incomplete."""
    import tensorflow as tf

    variables = model / "variables" / "variables.index"
    if not variables.is_file():
        raise CommandError(f"{variables}: missing (a SavedModel from `mefgan export` keeps its weights there)")
    with reading_model(saved_model_files(model)):
        return tf.saved_model.load(str(model))


def load_tflite(model: Path):
    """The ``tflite.LiteModel`` of a ``.tflite`` file; CommandError if it is not one of ours."""
    require("ai_edge_litert", f"{model}: running a .tflite model")
    if not model.is_file():
        raise CommandError(f"{model}: not a file (a .tflite model is one file)")
    try:
        return LiteModel(model)
    except (ValueError, RuntimeError, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CommandError(f"{model}: not a .tflite model from `mefgan export --tflite` ({first})") from None


def model_files(model: Path) -> tuple[tuple[str, int, int], ...]:
    """(path, size, mtime) of every file a load of ``model`` reads: a folder's files and its
    ``variables/`` (a SavedModel), or a checkpoint prefix's files and its folder's run files."""
    if model.is_dir():
        files = [p for folder in (model, model / "variables") if folder.is_dir() for p in folder.iterdir()]
    else:
        files = [p for p in model.parent.iterdir() if p.name.startswith(model.name + ".") or p.name in ("checkpoint", "mefgan.json")]
    return tuple(sorted((str(p), s.st_size, s.st_mtime_ns) for p in files if p.is_file() for s in [p.stat()]))


class LoadedModels:
    """The last ``LOADED_MODELS_KEPT`` TensorFlow stages loaded, by model path, attention block
    size and files (LiteRT interpreters are not shared: one runs one call at a time)."""

    def __init__(self, kept: int = LOADED_MODELS_KEPT) -> None:
        self.kept, self.stages, self.lock = kept, OrderedDict(), threading.Lock()

    def get(self, key: tuple, load: Callable[[], Stages]) -> Stages:
        with self.lock:
            if key in self.stages:
                self.stages.move_to_end(key)
                return self.stages[key]
            stages = self.stages[key] = load()
            while len(self.stages) > self.kept:
                self.stages.popitem(last=False)
            return stages

    def clear(self) -> None:
        with self.lock:
            self.stages.clear()


LOADED = LoadedModels()


def load_stages(path: str | os.PathLike | None = None, attention_chunk: int | None = None, once: bool = False) -> Stages:
    """The inference stages of a run or checkpoint (folder or prefix), a SavedModel from ``mefgan
    export`` (or a folder of its numbered versions) or a ``.tflite`` file (their attention was fixed
    at export; ``attention_chunk`` applies to runs and checkpoints). TensorFlow models come from
    ``LOADED`` when their files have not changed since they were loaded. ``once``: for one fusion
    (a checkpoint's network then runs untraced: ``stages.generator_stages``)."""
    model = resolve_model(path)
    if is_tflite(model):
        return load_tflite(model)
    try:
        key = (str(model), attention_chunk, once, model_files(model))
    except OSError:  # gone or unreadable: the load names the problem
        return load_tensorflow_stages(model, attention_chunk, once)
    return LOADED.get(key, lambda: load_tensorflow_stages(model, attention_chunk, once))


def load_tensorflow_stages(model: Path, attention_chunk: int | None, once: bool = False) -> Stages:
    """The stages of a SavedModel or a checkpoint, loaded from their files."""
    if is_saved_model(model):
        loaded = load_saved_model(model)
        if not (hasattr(loaded, "attention_half") and hasattr(loaded, "fuse_tile")):
            raise CommandError(f"{model}: SavedModel was not written by `mefgan export` (no fusion stages)")
        return TensorFlowStages(loaded)
    chunk = ATTENTION_BLOCKS.inference if attention_chunk is None else attention_chunk
    return generator_stages(load_generator(model, attention_chunk=chunk), traced=not once)


def load_fuser(path: str | os.PathLike | None = None, options: FusionOptions = DEFAULT_OPTIONS,
               progress: bool | None = False, once: bool = False) -> Fuser:
    """A callable fusing a list of RGB float32 [0, 1] exposures (any order, one size) into one image:
    the model at ``path`` (``load_stages``; default: the shipped generator) fusing as ``options`` say
    (``FusionOptions.resolve``); ``progress``: a progress bar (None: on a terminal only); ``once``:
    for one fusion (``load_stages``)."""
    return Fuser(load_stages(path, once=once), options, progress)
