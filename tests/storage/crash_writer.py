"""Child process of the crash test: writes turns until it is killed.

    python -m tests.storage.crash_writer DB_PATH {loop|pending} [PENDING_AFTER]

Prints `done <turn id>` after each committed finish_turn and, in `pending` mode,
`pending <turn id>` after PENDING_AFTER turns, then waits with that turn pending.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from bot.models import Image, ThreadKey, Usage
from storage.sqlite import SqliteStore


def _report(kind: str, turn_id: int) -> None:
    sys.stdout.write(f"{kind} {turn_id}\n")
    sys.stdout.flush()


OWNER = "crash-writer"


async def write_turns(path: Path, *, mode: str, pending_after: int) -> None:
    store = SqliteStore(path)
    await store.open()
    thread = await store.create_thread(ThreadKey("cli", "local", "cli", f"crash-{os.getpid()}"))
    reference = Image(data=os.urandom(1500), mime_type="image/png")  # shared by every turn
    parent: int | None = None
    count = 0
    while True:
        count += 1
        turn = await store.start_turn(
            thread.id,
            parent_id=parent,
            user="U1",
            prompt=f"version {count}",
            ratio="1:1",
            model="gemini-2.5-flash-image",
            inputs=(reference, Image(data=os.urandom(800), mime_type="image/jpeg")),
            owner=OWNER,
            lease=0.0,  # a lease already run out: the test reads as the process that takes over
        )
        if mode == "pending" and count > pending_after:
            _report("pending", turn.id)
            await asyncio.Event().wait()
        done = await store.finish_turn(
            turn.id,
            owner=OWNER,
            outputs=(Image(data=os.urandom(3000), mime_type="image/png"),),
            text=f"result {count}",
            usage=Usage(input_tokens=10, output_tokens=1290, total_tokens=1300, images=1),
            parts_json="[]",
        )
        _report("done", done.id)
        parent = done.id


def main() -> None:
    path, mode = Path(sys.argv[1]), sys.argv[2]
    pending_after = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    asyncio.run(write_turns(path, mode=mode, pending_after=pending_after))


if __name__ == "__main__":
    main()
