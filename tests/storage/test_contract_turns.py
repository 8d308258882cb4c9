"""The Store contract, turns: their tree, results, failures, lineage and images; every backend."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot.models import TurnStatus, Usage
from storage.base import Store
from tests.support.store import LEASE, MODEL, OWNER, done_turn, image, new_thread, pending_turn


async def test_a_started_turn_is_pending_with_its_inputs(store: Store) -> None:
    thread = await new_thread(store)
    photo, sketch = image("photo"), image("sketch", mime_type="image/jpeg")

    turn = await store.start_turn(
        thread.id,
        parent_id=None,
        user="U1",
        prompt="put the cat on the sofa",
        ratio="16:9",
        model=MODEL,
        inputs=(photo, sketch),
        owner=OWNER,
        lease=LEASE,
    )

    assert turn.status is TurnStatus.PENDING
    assert (turn.number, turn.parent_id, turn.thread_id) == (1, None, thread.id)
    assert turn.inputs == (photo.sha256, sketch.sha256)
    assert turn.outputs == ()
    assert await store.get_turn(turn.id) == turn
    head = await store.get_thread(thread.key)
    assert head is not None and head.head_id is None and head.turn_count == 1


async def test_finishing_a_turn_stores_its_result_and_moves_the_head(store: Store) -> None:
    thread = await new_thread(store)
    started = await pending_turn(store, thread.id)
    result = image("result")
    usage = Usage(input_tokens=12, output_tokens=1290, total_tokens=1302, images=1)
    parts = json.dumps([{"inlineData": {"mimeType": "image/png", "sha256": result.sha256}}])

    done = await store.finish_turn(
        started.id, owner=OWNER, outputs=(result,), text="Here it is", usage=usage, parts_json=parts
    )

    assert done.status is TurnStatus.DONE
    assert (done.outputs, done.text, done.usage, done.parts_json) == (
        (result.sha256,),
        "Here it is",
        usage,
        parts,
    )
    assert await store.get_turn(started.id) == done
    assert await store.load_images(done.outputs) == [result]
    after = await store.get_thread(thread.key)
    assert after is not None and after.head_id == done.id


async def test_turns_form_a_tree_numbered_in_order(store: Store) -> None:
    thread = await new_thread(store)
    root = await done_turn(store, thread.id, prompt="a red apple")
    child = await done_turn(store, thread.id, parent_id=root.id, prompt="make it green")
    branch = await done_turn(store, thread.id, parent_id=root.id, prompt="make it blue")

    assert [root.number, child.number, branch.number] == [1, 2, 3]
    assert (child.parent_id, branch.parent_id) == (root.id, root.id)
    after = await store.get_thread(thread.key)
    assert after is not None
    assert (after.head_id, after.turn_count) == (branch.id, 3)


async def test_a_pending_or_failed_turn_does_not_move_the_head(store: Store) -> None:
    thread = await new_thread(store)
    root = await done_turn(store, thread.id)
    pending = await pending_turn(store, thread.id, parent_id=root.id)
    await store.fail_turn(pending.id, error="The image service is not answering.")

    after = await store.get_thread(thread.key)
    assert after is not None and after.head_id == root.id


async def test_numbering_is_per_thread(store: Store) -> None:
    one, two = await new_thread(store, "one"), await new_thread(store, "two")
    await done_turn(store, one.id)
    await done_turn(store, one.id)
    first_of_two = await done_turn(store, two.id)
    assert first_of_two.number == 1


async def test_wrong_ids_are_refused_and_leave_nothing_behind(store: Store) -> None:
    thread = await new_thread(store)
    orphan = image("orphan input")
    with pytest.raises(LookupError):
        await pending_turn(store, thread.id + 1000, user="U")
    with pytest.raises(LookupError):
        await pending_turn(store, thread.id, parent_id=4242, user="U", inputs=(orphan,))
    assert await store.load_images([orphan.sha256]) == []
    done = await done_turn(store, thread.id)
    with pytest.raises(LookupError):
        await store.finish_turn(
            done.id, owner=OWNER, outputs=(), text="", usage=Usage(), parts_json="[]"
        )  # a finished turn is not finished twice
    assert await store.get_turn(done.id + 1000) is None
    after = await store.get_thread(thread.key)
    assert after is not None and after.turn_count == 1


async def test_fail_turn_keeps_the_error_but_never_overwrites_a_result(store: Store) -> None:
    thread = await new_thread(store)
    pending = await pending_turn(store, thread.id)
    failed = await store.fail_turn(pending.id, error="The prompt was blocked.")
    assert (failed.status, failed.error) == (TurnStatus.FAILED, "The prompt was blocked.")
    assert await store.get_turn(pending.id) == failed

    done = await done_turn(store, thread.id)
    kept = await store.fail_turn(done.id, error="late")
    assert (kept.status, kept.error) == (TurnStatus.DONE, None)
    with pytest.raises(LookupError):
        await store.fail_turn(done.id + 1000, error="nope")


async def test_concurrent_turns_on_one_thread_get_distinct_numbers(store: Store) -> None:
    thread = await new_thread(store, "busy")

    turns = await asyncio.gather(
        *(
            pending_turn(store, thread.id, user=f"U{n}", prompt=f"p{n}", inputs=(image(f"in{n}"),))
            for n in range(50)
        )
    )

    assert sorted(t.number for t in turns) == list(range(1, 51))
    stored = [await store.get_turn(t.id) for t in turns]
    assert [s.number if s else None for s in stored] == [t.number for t in turns]
    after = await store.get_thread(thread.key)
    assert after is not None and after.turn_count == 50


# -- lineage ---------------------------------------------------------------------------


async def test_lineage_walks_done_ancestors_oldest_first(store: Store) -> None:
    thread = await new_thread(store)
    chain = [await done_turn(store, thread.id, prompt="v1")]
    for version in range(2, 6):
        chain.append(
            await done_turn(store, thread.id, parent_id=chain[-1].id, prompt=f"v{version}")
        )
    ids = [turn.id for turn in chain]

    assert [t.id for t in await store.lineage(ids[-1], limit=3)] == ids[-3:]
    assert [t.id for t in await store.lineage(ids[-1], limit=50)] == ids
    assert [t.id for t in await store.lineage(ids[2], limit=50)] == ids[:3]
    assert await store.lineage(ids[-1], limit=1) == [chain[-1]]
    assert await store.lineage(ids[-1], limit=0) == []
    assert await store.lineage(ids[-1] + 1000, limit=3) == []


async def test_lineage_skips_failed_ancestors_and_follows_its_branch(store: Store) -> None:
    thread = await new_thread(store)
    root = await done_turn(store, thread.id, prompt="root")
    await done_turn(store, thread.id, parent_id=root.id, prompt="other branch")
    bad = await pending_turn(store, thread.id, parent_id=root.id, prompt="bad")
    await store.fail_turn(bad.id, error="blocked")
    leaf = await done_turn(store, thread.id, parent_id=bad.id, prompt="leaf")

    assert [t.prompt for t in await store.lineage(leaf.id, limit=6)] == ["root", "leaf"]
    assert [t.prompt for t in await store.lineage(leaf.id, limit=2)] == ["root", "leaf"]
    pending = await pending_turn(store, thread.id, parent_id=leaf.id, prompt="now")
    assert [t.prompt for t in await store.lineage(pending.id, limit=2)] == ["leaf", "now"]


# -- images ---------------------------------------------------------------------------


async def test_images_come_back_by_hash_in_the_order_asked(store: Store) -> None:
    thread = await new_thread(store)
    a, b, c = image("a"), image("b", mime_type="image/jpeg"), image("c", size=5000)
    await done_turn(store, thread.id, inputs=(a, b), outputs=(c,))
    missing = "0" * 64

    loaded = await store.load_images(
        [c.sha256, missing, a.sha256, "not-a-hash", b.sha256.upper(), a.sha256]
    )

    assert loaded == [c, a, b, a]
    assert [i.mime_type for i in loaded] == ["image/png", "image/png", "image/jpeg", "image/png"]
    assert await store.load_images([]) == []


async def test_the_same_image_in_two_turns_is_one_image(store: Store) -> None:
    thread = await new_thread(store)
    shared = image("shared")
    first = await done_turn(store, thread.id, inputs=(shared,), outputs=(shared,))
    second = await done_turn(store, thread.id, parent_id=first.id, inputs=(shared, shared))

    assert first.inputs == first.outputs == (shared.sha256,)
    assert second.inputs == (shared.sha256, shared.sha256)
    assert await store.load_images([shared.sha256]) == [shared]


async def test_a_result_kept_off_the_head_moves_there_when_delivered(store: Store) -> None:
    thread = await new_thread(store, "1700000000.000100")
    first = await done_turn(store, thread.id)
    second = await pending_turn(store, thread.id, parent_id=first.id)
    await store.finish_turn(
        second.id, owner=OWNER, outputs=[image("second")], text="", usage=Usage(images=1),
        parts_json="[]", head=False,
    )  # fmt: skip
    before = await store.get_thread(thread.key)
    await store.move_head(second.id)
    after = await store.get_thread(thread.key)
    assert before is not None and before.head_id == first.id
    assert after is not None and after.head_id == second.id
    with pytest.raises(LookupError):
        await store.move_head((await pending_turn(store, thread.id)).id)
