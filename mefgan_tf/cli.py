"""The `mefgan` console script: one subcommand per task.

Each subcommand lives in its own module, which provides ``configure(parser)`` and
``run(args) -> int``. Modules are imported only when their command runs, so
``mefgan --help`` answers without loading TensorFlow.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
from collections.abc import Sequence

from mefgan_tf import __version__
from mefgan_tf.errors import CommandError

# name -> (module holding configure/run, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "patches": ("data_prep.build", "cut an HDF5 file of training patches from SICE, brackets or photos"),
    "train": ("mefgan_tf.train_cli", "train the GAN (original recipe, resumable, multi-GPU/worker)"),
    "fuse": ("mefgan_tf.fuse_cli", "fuse exposures at full resolution with a trained generator"),
    "export": ("mefgan_tf.export", "write a SavedModel of the generator for TensorFlow Serving"),
    "serve": ("mefgan_tf.serve", "serve fusion over TensorFlow Serving's REST API, with a web page"),
    "evaluate": ("mefgan_tf.evaluate", "score fusion methods with the paper's and MEFB's metrics"),
    "import-tf1": ("mefgan_tf.tf1", "convert the authors' TF1 checkpoint into a mefgan-tf checkpoint"),
    "demo": ("mefgan_tf.demo", "fuse a generated sample pair with the shipped generator"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser; the subparser of ``only`` (if given) is fully configured."""
    parser = argparse.ArgumentParser(
        prog="mefgan",
        description="MEF-GAN multi-exposure image fusion (TensorFlow 2 / Keras 3).",
    )
    parser.add_argument("--version", action="version", version=f"mefgan-tf {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == only:  # configure only the command that runs: keeps startup fast
            _module(name).configure(p)
    return parser


# Commands that run TensorFlow: its start-up chatter (oneDNN notes, CUDA probing) is hidden for them.
TENSORFLOW_COMMANDS = {"train", "fuse", "export", "serve", "evaluate", "import-tf1", "demo"}


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and probe its devices with C++ log lines hidden; shown again if it fails."""
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
        except BaseException:
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _module(name: str):
    return importlib.import_module(COMMANDS[name][0])


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    if args.command is None:
        build_parser().print_help()
        return 2
    if args.command in TENSORFLOW_COMMANDS:
        import_tensorflow_quietly()
    try:
        return int(_module(args.command).run(args) or 0)
    except CommandError as err:
        print(f"mefgan {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"mefgan {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
