"""The `mefgan` console script: one subcommand per module of this package.

Each command module provides ``configure(parser)`` and ``run(args) -> int``: it parses the options
and calls the library with typed parameters; its ``check(args)``, if it has one, is called first,
before TensorFlow is imported, so that mistakes in the arguments are told at once. Modules are imported only when their command runs,
so ``mefgan --help`` answers without loading TensorFlow. The environment that TensorFlow and Keras
read when they are imported (``TF_CPP_MIN_LOG_LEVEL``, ``KERAS_BACKEND``) is set here, by the entry
point: importing the library changes nothing.
"""
from __future__ import annotations

import argparse
import atexit
import contextlib
import errno
import importlib
import importlib.util
import logging
import os
import sys
import threading
import traceback
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NoReturn

from mefgan_tf import __version__
from mefgan_tf.environment import (
    finish_tensorflow_import,
    import_tensorflow_quietly,
    set_environment,
    start_tensorflow_import,
)
from mefgan_tf.errors import CommandError
from mefgan_tf.signals import check_interrupted, handled, interrupts_noticed


@dataclass(frozen=True)
class Command:
    """A subcommand: the module of this package holding its ``configure``/``run``, its one-line help,
    whether it runs TensorFlow (whose start-up chatter is then hidden), and whether TensorFlow starts
    in the background while it reads its inputs (its ``run`` then calls ``import_tensorflow_quietly``
    before the model is loaded)."""

    module: str
    help: str
    tensorflow: bool = True
    import_while_reading: bool = False


COMMANDS: dict[str, Command] = {
    "patches": Command("patches", "cut an HDF5 file of training patches from SICE, brackets or photos", tensorflow=False),
    "train": Command("train", "train the GAN (original recipe, resumable, multi-GPU/worker, TensorFlow or JAX)"),
    "fuse": Command("fuse", "fuse exposures at full resolution with a trained generator", import_while_reading=True),
    "export": Command("export", "write a SavedModel of the generator for TensorFlow Serving"),
    "serve": Command("serve", "serve fusion over TensorFlow Serving's REST API, with a web page"),
    "evaluate": Command("evaluate", "score fusion methods with the paper's and MEFB's metrics"),
    "import-tf1": Command("import_tf1", "convert the authors' TF1 checkpoint into a mefgan-tf checkpoint"),
    "demo": Command("demo", "fuse a generated sample pair with the shipped generator"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser; the subparser of ``only`` (if given) is fully configured."""
    parser = argparse.ArgumentParser(
        prog="mefgan",
        description="MEF-GAN multi-exposure image fusion (TensorFlow 2 / Keras 3).",
    )
    parser.add_argument("--version", action="version", version=f"mefgan-tf {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in COMMANDS.items():
        p = sub.add_parser(name, help=command.help, description=command.help)
        if name == only:  # configure only the command that runs: keeps startup fast
            command_module(name).configure(p)
    return parser


def command_module(name: str):
    return importlib.import_module(f"{__name__}.{COMMANDS[name].module}")


@contextmanager
def config_warnings_as_notes(command: str) -> Iterator[None]:
    """Show ``ConfigWarning`` (unknown keys in a saved config) as one line naming the command, and
    ``InputNote`` (an input whose result may surprise) as a one-line note."""
    from mefgan_tf.config import ConfigWarning
    from mefgan_tf.images import InputNote

    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, ConfigWarning):
                print(f"mefgan {command}: warning: {message}", file=sys.stderr)
            elif issubclass(category, InputNote):
                print(f"mefgan {command}: note: {message}", file=sys.stderr)
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.simplefilter("always", ConfigWarning)
        warnings.simplefilter("always", InputNote)
        warnings.showwarning = show
        yield


def main(argv: Sequence[str] | None = None) -> int:
    set_environment()
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    if args.command is None:
        build_parser().print_help()
        return 2
    try:
        with interrupts_noticed(), config_warnings_as_notes(args.command):
            module = command_module(args.command)
            if hasattr(module, "check"):  # what needs no model, before TensorFlow starts (seconds)
                module.check(args)
            if getattr(args, "backend", "tensorflow") == "jax":
                os.environ["KERAS_BACKEND"] = "jax"  # before Keras is first imported (`mefgan train --backend jax`)
                if importlib.util.find_spec("tensorflow") is not None:  # Keras imports it anyway, where installed
                    import_tensorflow_quietly()
            elif COMMANDS[args.command].import_while_reading:
                start_tensorflow_import()
            elif COMMANDS[args.command].tensorflow:
                import_tensorflow_quietly(skip_optional=True)
            code = int(module.run(args) or 0)
            check_interrupted()
        sys.stdout.flush()
        return code
    except CommandError as err:
        logging.getLogger("tensorflow").setLevel(logging.ERROR)  # no warnings about a model it could not load
        return error(args.command, str(err))
    except KeyboardInterrupt:
        handled()
        return error(args.command, "interrupted", 130)
    except OSError as err:  # the user's files, folders, disk or terminal
        if err.filename is None and err.errno in (errno.ENOSPC, errno.EPIPE, errno.EIO):
            drop_stdout()
            return error(args.command, f"standard output: cannot write ({os.strerror(err.errno)})")
        return error(args.command, os_error_line(err))
    except Exception:  # a bug of ours: the traceback helps whoever fixes it
        traceback.print_exc()
        return error(args.command, "internal error (a bug in mefgan-tf: please report it with the lines above)")
    finally:
        with contextlib.suppress(Exception):  # a command that failed before it needed TensorFlow
            finish_tensorflow_import()


def console() -> NoReturn:
    """The `mefgan` console script: exits with ``main``'s code. After a command that ran TensorFlow
    (and left no thread running) the exit handlers run, the output is flushed and the process ends
    without the interpreter's teardown: TensorFlow's C++ destructors alone take a second on a CPU."""
    code = main()
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if "tensorflow" not in sys.modules or others:
        sys.exit(code)
    atexit._run_exitfuncs()  # what ``sys.exit`` would run: temporary folders removed, logs flushed
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def error(command: str, message: str, code: int = 1) -> int:
    """Say ``message`` on one line of stderr and return the exit code."""
    with contextlib.suppress(OSError):
        print(f"mefgan {command}: error: {message}", file=sys.stderr)
    return code


def drop_stdout() -> None:
    """Point standard output at the null device, so that Python's flush at exit, which would meet the
    same error again, adds no traceback."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def os_error_line(err: OSError) -> str:
    """One line for an operating-system error: the file and the system's reason."""
    text = str(err).strip()
    reason = err.strerror or (text.splitlines()[0] if text else type(err).__name__)
    if err.errno == errno.ENOSPC or "No space left" in text:
        reason = "No space left on device"
    verb = "cannot write" if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS) or "No space left" in text else "cannot use"
    return f"{err.filename}: {verb} ({reason})" if err.filename else f"{verb} a file ({reason})"
