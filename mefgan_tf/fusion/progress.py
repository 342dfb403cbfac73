"""One progress bar over a whole fusion, and its cancellation (``FusionProgress``)."""
from __future__ import annotations

import sys
import threading

from tqdm import tqdm


class FusionCancelled(Exception):
    """A fusion stopped at a step because its ``stop`` event was set (its requester is gone)."""


class FusionProgress:
    """One progress bar over a whole fusion (attention rows, then tiles, pair after pair) with an
    ETA: steps are weighed in full-resolution pixels, an attention score counting ``tiles.SCORE_COST``.
    ``enabled``: True, False, or None (only when stderr is a terminal). ``stop``: an event that,
    once set, makes the next step raise ``FusionCancelled`` (steps are attention blocks and tiles)."""

    def __init__(self, total: float, enabled: bool | None = None, desc: str = "fusing",
                 stop: threading.Event | None = None) -> None:
        bar_format = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]"
        disable = None if enabled is None else not enabled
        # Every step is shown (mininterval 0): steps are attention blocks and tiles, never tiny.
        self.bar = tqdm(total=total, desc=desc, leave=False, disable=disable, bar_format=bar_format, file=sys.stderr,
                        mininterval=0)
        self.stop = stop

    def check_stop(self, step: str) -> None:
        if self.stop is not None and self.stop.is_set():
            raise FusionCancelled(f"fusion cancelled before {step}")

    def advance(self, work: float, step: str) -> None:
        self.check_stop(step)
        self.bar.set_postfix_str(step, refresh=False)
        self.bar.update(work)

    def close(self) -> None:
        self.bar.close()


def advance(progress: FusionProgress | None, work: float, step: str) -> None:
    if progress is not None:
        progress.advance(work, step)


def check_stop(progress: FusionProgress | None, step: str) -> None:
    if progress is not None:
        progress.check_stop(step)
