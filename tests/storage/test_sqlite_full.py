"""A full disk: the write probe says so before a job finds out, and reads go on."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.models import ThreadKey
from storage.sqlite import SqliteStore, free_bytes


@contextlib.contextmanager
def small_disk(where: Path, *, size: str) -> Iterator[Path]:
    """A tmpfs of the given size; the test is skipped where mounting is not allowed."""
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip("this machine does not let the tests mount a small file system")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


async def test_the_probe_fails_when_the_disk_has_less_than_the_reserve(tmp_path: Path) -> None:
    roomy = SqliteStore(tmp_path / "bot.db", min_free_bytes=1)
    cramped = SqliteStore(tmp_path / "bot.db", min_free_bytes=free_bytes(tmp_path) * 2)
    await roomy.open()
    await cramped.open()
    try:
        assert await roomy.probe_write() is True
        assert await cramped.probe_write() is False
    finally:
        await cramped.close()
        await roomy.close()


async def test_a_really_full_disk_fails_the_probe_and_reads_go_on(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", size="4m") as disk:
        store = SqliteStore(disk / "bot.db", min_free_bytes=512 * 1024)
        await store.open()
        try:
            thread = await store.create_thread(ThreadKey("slack", "T1", "C1", "1.0"))
            assert await store.probe_write() is True
            with contextlib.suppress(OSError):  # fill the disk to its last byte
                (disk / "ballast").write_bytes(b"\0" * 8 * 1024 * 1024)
            assert await store.probe_write() is False
            assert await store.ping() is True
            assert await store.get_thread(thread.key) == thread
        finally:
            await store.close()
