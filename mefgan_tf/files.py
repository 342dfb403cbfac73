"""Safe file writing: outputs appear complete or not at all, and destinations are checked first.

Temporaries are named ``.<name>.<pid>-<random><suffix>`` beside their target. A run that is killed
cannot remove its own, so every new write to the same target first removes the temporaries of
earlier writers that are gone: those whose process no longer runs on this machine, and unnamed
ones (from older versions) untouched for ``STALE_AGE_S`` seconds. A writer that still runs keeps
its temporary, however old.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from mefgan_tf.errors import CommandError, FileProblem
from mefgan_tf.signals import check_interrupted

STALE_AGE_S = 600.0  # a temporary without a process id, untouched this long, is an interrupted run's
OVERWRITE_HINT = "pass --overwrite (-y) to replace it"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary name keeps the extension of ``path`` (or ``suffix``) so that writers that
    choose a format from it (OpenCV, h5py) still work. On any error the temporary file is removed
    and ``path`` is left untouched.
    """
    path = Path(path)
    suffix = suffix or path.suffix
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path, suffix)
    fd, tmp = tempfile.mkstemp(prefix=_prefix(path), suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
    try:
        yield tmp_path
        check_interrupted()
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a new temporary folder beside ``path``; it becomes ``path`` only if the block succeeds.

    ``path`` must be absent or empty. On any error the temporary folder is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path, "")
    tmp = Path(tempfile.mkdtemp(prefix=_prefix(path), dir=path.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes 0700
    try:
        yield tmp
        check_interrupted()
        if path.exists():
            path.rmdir()
        tmp.rename(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}-"


def temporary_pattern(path: Path, suffix: str) -> re.Pattern:
    """Names of the temporaries of ``path``: ``.<name>.[<pid>-]<8 random characters><suffix>``."""
    return re.compile(rf"\.{re.escape(path.name)}\.(?:(?P<pid>\d+)-)?[a-z0-9_]{{8}}{re.escape(suffix)}")


def process_alive(pid: int) -> bool:
    """True if a process with this id runs on this machine (or may: not ours to signal)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def is_stale(entry: Path, pid: str | None, now: float | None = None) -> bool:
    """Whether a temporary was left by a writer that is gone (see the module notes)."""
    if pid is not None:
        return not process_alive(int(pid))
    try:
        age = (time.time() if now is None else now) - entry.lstat().st_mtime
    except OSError:
        return False
    return age > STALE_AGE_S


def remove_stale_temporaries(path: str | os.PathLike, suffix: str | None = None) -> list[Path]:
    """Remove the temporaries that interrupted writers of ``path`` left beside it; the removed paths."""
    path = Path(path)
    pattern = temporary_pattern(path, path.suffix if suffix is None else suffix)
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return []
    removed = []
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None or not is_stale(entry, match["pid"]):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
        removed.append(entry)
    return removed


# Kinds of file that reading would block on (a FIFO waits for a writer) or never finish (a device).
SPECIAL_FILES = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                 (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def check_regular(path: str | os.PathLike) -> None:
    """FileProblem if ``path`` is a FIFO, a device or a socket (checked before opening it: reading one
    would wait for ever or never end). A missing path or a folder is left to the reader's message."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return
    for test, kind in SPECIAL_FILES:
        if test(mode):
            raise FileProblem(f"{path}: is {kind}, not a regular file")


def check_outside(out: str | os.PathLike, folder: str | os.PathLike, what: str = "input folder") -> None:
    """CommandError if the output ``out`` is the folder ``folder`` that a command reads, or inside it
    (links followed): a later run would read what this one wrote as an input."""
    out, folder = Path(out), Path(folder)
    try:
        inside = folder.resolve() in (out.resolve(), *out.resolve().parents)
    except (OSError, RuntimeError):  # a link that loops: the reader says so
        return
    if inside:
        raise CommandError(f"{out}: is inside the {what} {folder}; a later run would read what this one writes "
                           "as input: choose an output outside it")


def nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_folder_target(folder: str | os.PathLike, target: str | os.PathLike | None = None) -> None:
    """CommandError unless ``folder`` is, or could be created as, a writable folder.

    ``target`` (default: ``folder``) is the path the message names.
    """
    folder = Path(folder)
    target = folder if target is None else Path(target)
    existing = nearest_existing(folder)
    if target == folder and folder.exists() and not folder.is_dir():
        raise CommandError(f"{target}: exists and is not a folder")
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise CommandError(f"{target}: cannot write here ({existing} is not a writable folder)")


def check_file_target(path: str | os.PathLike, overwrite: bool = False) -> None:
    """CommandError unless the file ``path`` can be written: its folder is writable, it is not a
    folder, and it does not exist yet unless ``overwrite``. Called before the work starts."""
    path = Path(path)
    if path.is_dir():
        raise CommandError(f"{path}: is a folder, not a file name")
    if path.exists() and not overwrite:
        raise CommandError(f"{path}: already exists; {OVERWRITE_HINT}")
    check_folder_target(path.parent, path)


def check_new_files(paths: list[Path], overwrite: bool = False) -> None:
    """CommandError naming the first of ``paths`` that exists, unless ``overwrite``."""
    existing = [p for p in paths if p.exists() or p.is_symlink()]
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise CommandError(f"{existing[0]}: already exists{more}; {OVERWRITE_HINT}")


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; CommandError naming the file if it cannot be written."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
    except OSError as err:
        raise CommandError(f"{path}: cannot write ({err.strerror or err})") from None
    return path


# ---------------------------------------------------------------------------------------- one writer
LOCK_NAME = ".mefgan.lock"  # in a run or report folder; a file's lock is ``.<name>.lock`` beside it


def lock_path(target: Path) -> Path:
    """Where the lock of ``target`` lives: inside it for a folder, beside it for a file."""
    return target / LOCK_NAME if target.is_dir() or not target.suffix else target.with_name(f".{target.name}.lock")


@contextlib.contextmanager
def exclusive(target: str | os.PathLike, what: str = "output") -> Iterator[None]:
    """Hold ``target`` (a folder or a file about to be written) for this process while the block runs;
    CommandError naming the process that holds it already. The lock is the kernel's (``flock``), so it
    is released when a process ends in any way, and a stale lock file means nothing."""
    import fcntl

    target = Path(target)
    path = lock_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    held = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise CommandError(f"{target}: this {what} is in use by {holder}; wait for it to finish or choose "
                               "another destination") from None
        held = True
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()}".encode(), 0)
        yield
    finally:
        if held and path.parent != target:  # a file's lock lives beside it: leave no trace
            path.unlink(missing_ok=True)
        os.close(fd)


# ---------------------------------------------------------------------------------------- room
DISK_MARGIN = 16 * 2**20  # bytes kept free beyond what a write needs


def check_room(path: str | os.PathLike, needed: int, what: str = "") -> None:
    """CommandError when the file system of ``path`` has less than ``needed`` bytes (plus a margin)
    free: said before writing, as HDF5 and TensorFlow fail badly (tracebacks, even crashes) on a
    full disk."""
    folder = nearest_existing(Path(path).parent if not Path(path).is_dir() else Path(path))
    free = shutil.disk_usage(folder).free
    if free < needed + DISK_MARGIN:
        detail = f" {what}" if what else ""
        raise CommandError(f"{path}: cannot write (No space left on device: {free / 2**20:.0f} MB free,{detail} "
                           f"needs {(needed + DISK_MARGIN) / 2**20:.0f} MB)")
