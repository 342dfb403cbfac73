"""Argument types shared by the commands: numbers are refused by argparse, in one line, unless finite."""
from __future__ import annotations

import argparse
import math


def finite_float(text: str) -> float:
    """A float that is neither NaN nor infinite (argparse's ``float`` accepts 'nan' and 'inf')."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def port_number(text: str) -> int:
    """A TCP port, 0 to 65535 (the system would silently wrap larger numbers around)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0 to 65535)")
    return value
