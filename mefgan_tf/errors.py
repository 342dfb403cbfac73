"""Errors shown to users as one line, with a non-zero exit."""


class CommandError(Exception):
    """An error the user can fix (bad file, bad option): `mefgan` prints it on one line, exit 1."""


# The optional parts of mefgan-tf: the pip extra that installs each module a command may need.
EXTRAS = {"fastapi": "server", "uvicorn": "server", "ai_edge_litert": "litert", "jax": "jax"}


def require(module: str, purpose: str) -> None:
    """CommandError naming the pip extra to install when ``module`` (one of ``EXTRAS``) is missing."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        extra = EXTRAS[module]
        raise CommandError(f"{purpose} needs the '{extra}' extra ({module} is not installed): "
                           f"pip install 'mefgan-tf[{extra}]'")
