"""glibc's allocator, set for processes that move megabytes of image data in every job.

Where the C library is not glibc nothing changes: these settings save memory and time, and
the bot works the same without them.
"""

from __future__ import annotations

import ctypes
import logging

logger = logging.getLogger(__name__)

MAIN_ARENAS = 2
"""malloc arenas of the bot's main process (glibc's default: up to eight per core)."""
KEPT_BLOCKS = 4
"""Pillow's freed pixel blocks a worker keeps for its next image (each at most 16 MiB)."""
KEPT_HEAP_BYTES = 64 * 1024 * 1024
"""Free memory at the top of a worker's heap it keeps rather than hands back."""
_MMAP_FROM_BYTES = 32 * 1024 * 1024  # larger buffers (a 4K canvas) still go back at once
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8  # glibc's <malloc.h>


def few_arenas() -> bool:
    """Hold the main process to MAIN_ARENAS malloc arenas; call before its threads start.

    Each thread that allocates while the others' arenas are busy gets one of its own, and an
    arena keeps the megabytes of the answers it once held: with the store's, the upstream's
    and the executor's threads, that was about 20 MB more at the same load. False: not glibc.
    """
    return _mallopt(_M_ARENA_MAX, MAIN_ARENAS)


def keep_freed_memory() -> None:
    """Let an image worker reuse the memory of one image for the next.

    By default both Pillow and glibc hand a large buffer back to the kernel when it is freed,
    so the next image of the same size faults every page in again (thousands per result
    checked). A worker does the same few sizes of work over and over: it keeps what it freed,
    up to a bound, instead.
    """
    from PIL import _imaging  # Pillow's C core: its allocator's settings live there only

    _imaging.set_blocks_max(KEPT_BLOCKS)
    _mallopt(_M_TRIM_THRESHOLD, KEPT_HEAP_BYTES)
    _mallopt(_M_MMAP_THRESHOLD, _MMAP_FROM_BYTES)


def _mallopt(option: int, value: int) -> bool:
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        logger.debug("not glibc: malloc keeps its defaults")
        return False
    return bool(mallopt(option, value))
