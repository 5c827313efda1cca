"""``core.sleep``: a wait that a kill ends at once."""
from __future__ import annotations

from typing import TypeVar

from ..registry import Cancelled, action

T = TypeVar("T")


@action("core.sleep", label="Sleep", help={"seconds": "How long to wait."}, supports_cancel=True)
def sleep(ctx, seconds: float = 1.0) -> str:
    """Wait; a kill ends the wait at once."""
    if seconds < 0:
        raise ValueError("seconds must be zero or more")
    if ctx.wait_cancelled(seconds):
        raise Cancelled()
    return f"slept {seconds:g} s"
