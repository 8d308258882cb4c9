"""Previews: a 4K PNG of ~25 MB, and one of pure noise, made to fit Discord's 10 MiB limit.

Each runs through one image worker process, as the service runs it; the worker's peak resident
set (VmHWM, reset before each image) and the wall time of the call are measured. The render is
smooth colour fields under a fine grain, which PNG compresses about as a model's detailed 4K
render (25 MB); the noise compresses not at all (50 MB), the worst case for every encoder.
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import time

from PIL import Image as Pil
from PIL import ImageChops

from bench.procfs import ProcessTree
from bench.report import Row, judged
from bench.sizes import Context
from bot.images import ImageWorkers, preview
from bot.models import Image

NAME = "previews"
MiB = 1024 * 1024
DISCORD_LIMIT = 10 * MiB
TIME_TARGET = 6.0  # seconds of one worker for one 4K preview, on this shared 2-core machine
# MB of the worker processes: ~60 idle (interpreter, Pillow, multiprocessing's tracker), the
# original twice (as received and unpickled), the 48 MB frame, and libwebp decoding the WebP
# candidate again to compare it (two RGBA canvases and Pillow's copy, ~180 MB).
MEMORY_TARGET = 450.0


def _render(side: int, seed: int) -> Pil.Image:
    rng = random.Random(seed)
    cells = max(1, side // 32)
    base = Pil.frombytes("RGB", (cells, cells), rng.randbytes(cells * cells * 3))
    base = base.resize((side, side), Pil.Resampling.BICUBIC)
    grain = Pil.frombytes("L", (side, side), rng.randbytes(side * side)).point(lambda v: v // 32)
    return Pil.merge("RGB", [ImageChops.add(channel, grain) for channel in base.split()])


def _noise(side: int, seed: int) -> Pil.Image:
    return Pil.frombytes("RGB", (side, side), random.Random(seed).randbytes(side * side * 3))


def _png(frame: Pil.Image, level: int) -> Image:
    buffer = io.BytesIO()
    frame.save(buffer, "PNG", compress_level=level)
    return Image(buffer.getvalue(), "image/png")


async def run(context: Context) -> list[Row]:
    side = context.sizes.preview_side
    limit = DISCORD_LIMIT if not context.sizes.smoke else 100_000
    originals = {
        "render": await asyncio.to_thread(lambda: _png(_render(side, 14), 6)),
        "noise": await asyncio.to_thread(lambda: _png(_noise(side, 15), 1)),
    }
    workers = ImageWorkers(1)
    await workers.start()
    tree = ProcessTree(os.getpid())
    rows: list[Row] = []
    try:
        for kind, original in originals.items():
            tree.reset_peak()
            started = time.monotonic()
            made = await preview(original, limit_bytes=limit, platform="Discord", workers=workers)
            seconds = time.monotonic() - started
            peak = tree.peak()
            worker_mb = peak.tree_mb - peak.main_mb
            assert made is not None and len(made.image.data) <= limit
            rows += _rows(kind, original, made.footer, seconds, worker_mb, context.sizes.smoke)
    finally:
        await workers.aclose()
    return rows


def _rows(
    kind: str, original: Image, footer: str, seconds: float, worker_mb: float, smoke: bool
) -> list[Row]:
    label = f"{kind}, {len(original.data) / 1_000_000:.1f} MB PNG"
    return [
        Row(NAME, f"{label}: result", footer.split(". The original")[0]),
        Row(
            NAME,
            f"{label}: wall time",
            f"{seconds:.2f} s",
            f"<= {TIME_TARGET:g} s",
            judged(seconds <= TIME_TARGET, smoke=smoke),
        ),
        Row(
            NAME,
            f"{label}: peak RSS of the worker processes",
            f"{worker_mb:.0f} MB",
            f"<= {MEMORY_TARGET:g} MB",
            judged(worker_mb <= MEMORY_TARGET, smoke=smoke),
        ),
    ]
