"""ImageWorkers: photos go to worker processes, small images skip them, one FIFO queue for all."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import multiprocessing
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import BrokenExecutor, Executor, Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as Pil

from bot.engine import Engine, JobGate, UserLimits
from bot.errors import DamagedImage, NotAnImage, ShuttingDown, TooManyImages
from bot.images import ImageWorkers, normalise, normalise_all, verify_output
from bot.images.allocator import KEPT_BLOCKS
from bot.models import Attachment, Image
from storage.memory import MemoryStore
from tests.fakes.generator import FakeGenerator, Script
from tests.support.engine import request
from tests.support.images import ACCEPTED, BLUE, RED, decode, encode, halved, halves, noise

ROOT = Path(__file__).resolve().parents[2]


def _rotated_photo() -> bytes:
    """A modest camera-like JPEG stored sideways: orientation 6 makes it need real work."""
    exif = Pil.Exif()
    exif[0x0112] = 6
    return encode(halves((1200, 900), RED, BLUE), "JPEG", quality=90, exif=exif.tobytes())


def _too_many(limit: int, given: int) -> None:
    """In a worker: an error whose constructor takes keywords, which pickle alone cannot rebuild."""
    raise TooManyImages(limit=limit, given=given)


def _same(value: Any) -> Any:
    return value


class HeldPool(Executor):
    """Runs nothing until the test finishes a call: what was submitted, in order, and how many."""

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.pending: list[tuple[Future[Any], Callable[[], Any]]] = []
        self.most = 0
        self.shut = False
        self._arrivals: list[tuple[int, asyncio.Event]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self.pending.append((future, functools.partial(fn, *args, **kwargs)))
        self.calls.append(args[1])  # args[0] is the function the worker calls
        self.most = max(self.most, len(self.pending))
        for count, event in self._arrivals:
            if len(self.calls) >= count:
                event.set()
        return future

    async def submitted(self, count: int) -> None:
        event = asyncio.Event()
        self._arrivals.append((count, event))
        if len(self.calls) >= count:
            event.set()
        await event.wait()

    def finish(self, index: int = 0, *, error: BaseException | None = None) -> None:
        future, call = self.pending.pop(index)
        if error is None:
            future.set_result(call())
        else:
            future.set_exception(error)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.shut = True


def _no_pool(size: int) -> Executor:
    raise AssertionError("no worker should be needed")


# -- the pool is used for photos, and only for them ------------------------------------------


async def test_a_photo_is_converted_in_a_worker_process_exactly_as_in_a_thread() -> None:
    photo = Attachment(_rotated_photo(), "IMG_0001.jpg")
    workers = ImageWorkers(1)
    try:
        image = await normalise(photo, accepted=ACCEPTED, workers=workers)
        assert workers.jobs == 1
        assert await workers.run(os.getpid) != os.getpid()
    finally:
        await workers.aclose()
    assert image == await normalise(photo, accepted=ACCEPTED)
    assert decode(image).size == (900, 1200)


def _blocks_kept() -> int:
    from PIL import _imaging

    return int(_imaging.get_blocks_max())


async def test_a_worker_keeps_freed_pixel_blocks_for_its_next_image() -> None:
    """Pillow's default hands each image's memory back; a worker keeps a few blocks."""
    workers = ImageWorkers(1)
    try:
        assert await workers.run(_blocks_kept) == KEPT_BLOCKS > 0
    finally:
        await workers.aclose()
    assert _blocks_kept() == 0  # this process (the bot's own) keeps Pillow's default


def test_the_main_process_can_be_held_to_a_few_malloc_arenas() -> None:
    # In a process of its own: the setting is the whole process's, for the rest of its life.
    code = "from bot.images import few_arenas; print(few_arenas())"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ("True" if platform.libc_ver()[0] == "glibc" else "False")


async def test_a_small_png_that_passes_as_it_is_never_reaches_a_worker() -> None:
    Pil.preinit()  # the PNG plugin, which a bot loads in ImageWorkers.start
    data = encode(halves((200, 120), RED, BLUE), "PNG")
    workers = ImageWorkers(1, executor=_no_pool)

    normalised = await normalise(
        Attachment(data, "sticker.png"), accepted=ACCEPTED, workers=workers
    )
    output = Image(data, "image/png")
    verified = await verify_output(output, workers=workers)

    assert normalised == Image(data, "image/png") and verified is output
    assert workers.jobs == 0 and not workers.started


async def test_a_file_that_is_no_image_is_refused_without_a_worker() -> None:
    workers = ImageWorkers(1, executor=_no_pool)
    with pytest.raises(NotAnImage, match=r"notes\.txt"):
        await normalise_all(
            [Attachment(b"plain text", "notes.txt")], accepted=ACCEPTED, workers=workers
        )
    assert not workers.started


async def test_the_engine_hands_attachments_results_and_the_current_image_to_its_workers() -> None:
    store, generator = MemoryStore(), FakeGenerator()
    await store.open()
    workers = ImageWorkers(1, executor=ThreadPoolExecutor)  # counted, without processes
    engine = Engine(
        store=store,
        generator=generator,
        gate=JobGate(max_concurrent=2, max_queue=2),
        user_limits=UserLimits(per_minute=0, per_day=0, counter=store),
        images=workers,
    )
    big = Image(encode(noise((640, 480)), "PNG"), "image/png")
    generator.queue(Script(image=big), Script(image=big))
    photo = Attachment(_rotated_photo(), "IMG_0004.jpg")
    try:
        first = await engine.imagine(dataclasses.replace(request("t1"), attachments=(photo,)))
        assert workers.jobs == 2  # the photo, then the model's image
        await engine.refine(request("t1", "make it night"))
        assert workers.jobs == 4  # the current image sent back, then the new result
    finally:
        await workers.aclose()
        await store.close()
    assert first.images == (big,)


# -- errors come back as they were raised ----------------------------------------------------


async def test_errors_raised_in_a_worker_keep_their_type_message_and_attributes() -> None:
    broken = Attachment(halved(_rotated_photo()), "IMG_0002.jpg")
    output = Image(halved(encode(noise((640, 480)), "PNG")), "image/png")
    with pytest.raises(NotAnImage) as in_thread:
        await normalise(broken, accepted=ACCEPTED)
    with pytest.raises(DamagedImage) as checked_in_thread:
        await verify_output(output)

    workers = ImageWorkers(1)
    try:
        with pytest.raises(NotAnImage) as in_worker:
            await normalise(broken, accepted=ACCEPTED, workers=workers)
        with pytest.raises(DamagedImage) as checked_in_worker:
            await verify_output(output, workers=workers)
        with pytest.raises(TooManyImages) as keywords:
            await workers.run(_too_many, 3, 5)
        assert workers.jobs == 3
    finally:
        await workers.aclose()

    assert str(in_worker.value) == str(in_thread.value)
    assert in_worker.value.user_message == in_thread.value.user_message
    assert checked_in_worker.value.user_message == checked_in_thread.value.user_message
    assert keywords.value.limit == 3
    assert keywords.value.user_message == TooManyImages(limit=3, given=5).user_message
    assert "_too_many" in str(keywords.value.__cause__)  # where the worker raised it


# -- one queue for every job -----------------------------------------------------------------


async def test_no_more_calls_than_workers_are_submitted_and_the_rest_wait_in_order() -> None:
    pool = HeldPool()
    workers = ImageWorkers(2, executor=lambda size: pool)
    jobs = [asyncio.create_task(workers.run(_same, number)) for number in range(5)]

    await pool.submitted(2)  # by now every job has asked: three wait for a worker
    assert pool.calls == [0, 1]
    pool.finish(1)
    await pool.submitted(3)
    assert pool.calls == [0, 1, 2]
    pool.finish(0)
    await pool.submitted(4)
    pool.finish(0)
    await pool.submitted(5)
    while pool.pending:
        pool.finish()

    assert await asyncio.gather(*jobs) == [0, 1, 2, 3, 4]
    assert pool.calls == [0, 1, 2, 3, 4] and pool.most == 2


async def test_a_caller_that_gives_up_keeps_the_worker_until_it_is_done() -> None:
    pool = HeldPool()
    workers = ImageWorkers(1, executor=lambda size: pool)
    first = asyncio.create_task(workers.run(_same, "abandoned"))
    await pool.submitted(1)
    second = asyncio.create_task(workers.run(_same, "next"))

    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    assert pool.calls == ["abandoned"]  # the worker is still busy with it
    pool.finish()
    await pool.submitted(2)
    pool.finish()
    assert await second == "next"


async def test_a_pool_whose_worker_died_is_replaced_for_the_next_call() -> None:
    made = [HeldPool(), HeldPool()]
    handed = iter(made)
    workers = ImageWorkers(1, executor=lambda size: next(handed))

    dying = asyncio.create_task(workers.run(_same, 1))
    await made[0].submitted(1)
    made[0].finish(error=BrokenExecutor("a worker was killed"))
    with pytest.raises(BrokenExecutor):
        await dying
    later = asyncio.create_task(workers.run(_same, 2))
    await made[1].submitted(1)
    made[1].finish()

    assert await later == 2 and made[0].shut and not made[1].shut


# -- lifecycle and the event loop --------------------------------------------------------------


async def test_workers_start_only_when_asked_and_close_cleanly() -> None:
    before = set(multiprocessing.active_children())
    workers = ImageWorkers(1)
    assert not workers.started and set(multiprocessing.active_children()) == before

    await workers.start()
    children = set(multiprocessing.active_children()) - before
    assert len(children) == 1
    await workers.aclose()

    assert not any(child.is_alive() for child in children)
    with pytest.raises(ShuttingDown):
        await workers.run(os.getpid)
    await workers.aclose()  # twice is harmless


_PARENT = """
import asyncio, os
from bot.images import ImageWorkers

async def main():
    workers = ImageWorkers(1)
    print(await workers.run(os.getpid), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs pidfd_open (Linux)")
async def test_a_worker_whose_parent_is_killed_exits_too() -> None:
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _PARENT, stdout=asyncio.subprocess.PIPE, cwd=ROOT
    )
    assert parent.stdout is not None
    worker = int(await parent.stdout.readline())
    descriptor = os.pidfd_open(worker)
    gone = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(descriptor, gone.set)  # readable once the process has exited
    try:
        parent.kill()
        await parent.wait()
        async with asyncio.timeout(10):
            await gone.wait()
    finally:
        loop.remove_reader(descriptor)
        os.close(descriptor)


async def test_the_event_loop_keeps_running_while_a_worker_converts_a_photo() -> None:
    workers = ImageWorkers(1)
    await workers.start()
    ticks = 0
    try:
        job = asyncio.create_task(
            normalise(
                Attachment(_rotated_photo(), "IMG_0003.jpg"), accepted=ACCEPTED, workers=workers
            )
        )
        while not job.done():
            ticks += 1
            await asyncio.sleep(0)  # a bare yield: every other task gets its turn
        await job
    finally:
        await workers.aclose()
    assert workers.jobs == 1
    assert ticks > 50, ticks
