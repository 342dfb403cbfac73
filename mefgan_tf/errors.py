"""Errors shown to users as one line, with a non-zero exit."""


class CommandError(Exception):
    """An error the user can fix (bad file, bad option): `mefgan` prints it on one line, exit 1."""
