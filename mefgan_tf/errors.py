"""Errors shown to users as one line, with a non-zero exit.

The errors of mefgan-tf are one family: ``MefganError``. What a user can fix is a ``CommandError``
(a ``ValueError``: a bad value, option or image), or its ``FileProblem`` (also an ``OSError``: a file
that cannot be read as asked). ``except ValueError`` and ``except OSError`` catch them as they
would the built-in errors; `mefgan` prints them on one line, exit 1.
"""
from __future__ import annotations

from typing import Any

QUOTE_LIMIT = 40  # characters of a bad value that a message quotes


class MefganError(Exception):
    """Every error that mefgan-tf raises on purpose."""


class CommandError(MefganError, ValueError):
    """An error the user can fix (bad file, bad option): `mefgan` prints it on one line, exit 1."""


class FileProblem(CommandError, OSError):
    """A file that cannot be used as asked (missing, not a regular file, unreadable)."""

    def __init__(self, message: str) -> None:
        Exception.__init__(self, message)

    def __str__(self) -> str:
        return str(self.args[0])


def quoted(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)``, cut to ``limit`` characters (with "...") so that a message stays one short line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# The optional parts of mefgan-tf: the pip extra that installs each module a command may need.
EXTRAS = {"fastapi": "server", "uvicorn": "server", "ai_edge_litert": "litert", "jax": "jax"}


def require(module: str, purpose: str) -> None:
    """CommandError naming the pip extra to install when ``module`` (one of ``EXTRAS``) is missing."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        extra = EXTRAS[module]
        raise CommandError(f"{purpose} needs the '{extra}' extra ({module} is not installed): "
                           f"pip install 'mefgan-tf[{extra}]'")
