"""The Store contract: every backend in the `store` fixture's params must pass all of it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.models import Thread, ThreadKey, TurnStatus, Usage, UsageTotals
from storage.base import Store
from storage.sqlite import SqliteStore
from tests.support.store import START, Clock, done_turn, image, key

MODEL = "gemini-2.5-flash-image"


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _make_store(backend: str, tmp_path: Path, clock: Clock) -> Store:
    if backend == "sqlite":
        return SqliteStore(tmp_path / "data" / "bot.db", clock=clock)
    raise ValueError(backend)


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def store(backend: str, tmp_path: Path, clock: Clock) -> AsyncIterator[Store]:
    opened = _make_store(backend, tmp_path, clock)
    await opened.open()
    yield opened
    await opened.close()


async def _thread(store: Store, name: str = "t1", **kwargs: str) -> Thread:
    return await store.create_thread(key(name, **kwargs))


# -- threads ------------------------------------------------------------------------


async def test_a_new_thread_is_found_by_its_key(store: Store) -> None:
    created = await store.create_thread(key("1700000000.000100"))

    found = await store.get_thread(key("1700000000.000100"))

    assert found == created
    assert (found.head_id, found.turn_count, found.pruned) == (None, 0, False)
    assert found.created_at == START
    assert await store.get_thread(key("1700000000.000200")) is None


async def test_creating_a_taken_key_returns_the_existing_thread(store: Store) -> None:
    first = await _thread(store)
    await done_turn(store, first.id)

    again = await _thread(store)

    assert again.id == first.id
    assert again.turn_count == 1


async def test_keys_differ_by_every_component(store: Store) -> None:
    base = ThreadKey("discord", "G1", "C1", "M1")
    others = [
        ThreadKey("slack", "G1", "C1", "M1"),
        ThreadKey("discord", "G2", "C1", "M1"),
        ThreadKey("discord", "G1", "C2", "M1"),
        ThreadKey("discord", "G1", "C1", "M2"),
    ]
    ids = {(await store.create_thread(k)).id for k in [base, *others]}
    assert len(ids) == 5


async def test_an_alias_names_the_same_thread(store: Store) -> None:
    thread = await store.create_thread(ThreadKey("discord", "G1", "C1", "interaction-9"))
    alias = ThreadKey("discord", "G1", "C1", "message-7")

    await store.add_alias(thread.id, key=alias)
    await store.add_alias(thread.id, key=alias)  # a repeat is harmless

    by_alias = await store.get_thread(alias)
    assert by_alias is not None
    assert by_alias.id == thread.id
    assert by_alias.key == alias
    assert (await store.create_thread(alias)).id == thread.id
    assert await store.thread_key(thread.id) == thread.key


async def test_thread_key_is_the_key_a_thread_was_created_under(store: Store) -> None:
    first = await _thread(store, "first")
    second = await _thread(store, "second")
    await store.add_alias(second.id, key=key("second-alias"))

    assert await store.thread_key(first.id) == key("first")
    assert await store.thread_key(second.id) == key("second")
    assert await store.thread_key(first.id + second.id + 100) is None


async def test_an_alias_cannot_take_another_threads_key(store: Store) -> None:
    first = await _thread(store, "a")
    second = await _thread(store, "b")

    with pytest.raises(ValueError, match="already names"):
        await store.add_alias(second.id, key=key("a"))
    with pytest.raises(LookupError):
        await store.add_alias(second.id + first.id + 100, key=key("c"))

    found = await store.get_thread(key("a"))
    assert found is not None and found.id == first.id
    assert await store.get_thread(key("c")) is None


# -- turns ---------------------------------------------------------------------------


async def test_a_started_turn_is_pending_with_its_inputs(store: Store) -> None:
    thread = await _thread(store)
    photo, sketch = image("photo"), image("sketch", mime_type="image/jpeg")

    turn = await store.start_turn(
        thread.id,
        parent_id=None,
        user="U1",
        prompt="put the cat on the sofa",
        ratio="16:9",
        model=MODEL,
        inputs=(photo, sketch),
    )

    assert turn.status is TurnStatus.PENDING
    assert (turn.number, turn.parent_id, turn.thread_id) == (1, None, thread.id)
    assert turn.inputs == (photo.sha256, sketch.sha256)
    assert turn.outputs == ()
    assert await store.get_turn(turn.id) == turn
    head = await store.get_thread(thread.key)
    assert head is not None and head.head_id is None and head.turn_count == 1


async def test_finishing_a_turn_stores_its_result_and_moves_the_head(store: Store) -> None:
    thread = await _thread(store)
    started = await store.start_turn(
        thread.id, parent_id=None, user="U1", prompt="p", ratio=None, model=MODEL, inputs=()
    )
    result = image("result")
    usage = Usage(input_tokens=12, output_tokens=1290, total_tokens=1302, images=1)
    parts = json.dumps([{"inlineData": {"mimeType": "image/png", "sha256": result.sha256}}])

    done = await store.finish_turn(
        started.id, outputs=(result,), text="Here it is", usage=usage, parts_json=parts
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
    thread = await _thread(store)
    root = await done_turn(store, thread.id, prompt="a red apple")
    child = await done_turn(store, thread.id, parent_id=root.id, prompt="make it green")
    branch = await done_turn(store, thread.id, parent_id=root.id, prompt="make it blue")

    assert [root.number, child.number, branch.number] == [1, 2, 3]
    assert (child.parent_id, branch.parent_id) == (root.id, root.id)
    after = await store.get_thread(thread.key)
    assert after is not None
    assert (after.head_id, after.turn_count) == (branch.id, 3)


async def test_a_pending_or_failed_turn_does_not_move_the_head(store: Store) -> None:
    thread = await _thread(store)
    root = await done_turn(store, thread.id)
    pending = await store.start_turn(
        thread.id, parent_id=root.id, user="U1", prompt="p", ratio=None, model=MODEL, inputs=()
    )
    await store.fail_turn(pending.id, error="The image service is not answering.")

    after = await store.get_thread(thread.key)
    assert after is not None and after.head_id == root.id


async def test_numbering_is_per_thread(store: Store) -> None:
    one, two = await _thread(store, "one"), await _thread(store, "two")
    await done_turn(store, one.id)
    await done_turn(store, one.id)
    first_of_two = await done_turn(store, two.id)
    assert first_of_two.number == 1


async def test_wrong_ids_are_refused(store: Store) -> None:
    thread = await _thread(store)
    with pytest.raises(LookupError):
        await store.start_turn(
            thread.id + 1000, parent_id=None, user="U", prompt="p", ratio=None, model=MODEL,
            inputs=(),
        )  # fmt: skip
    with pytest.raises(LookupError):
        await store.start_turn(
            thread.id, parent_id=4242, user="U", prompt="p", ratio=None, model=MODEL, inputs=()
        )
    done = await done_turn(store, thread.id)
    with pytest.raises(LookupError):
        await store.finish_turn(
            done.id, outputs=(), text="", usage=Usage(), parts_json="[]"
        )  # a finished turn is not finished twice
    assert await store.get_turn(done.id + 1000) is None
    after = await store.get_thread(thread.key)
    assert after is not None and after.turn_count == 1


async def test_fail_turn_keeps_the_error_but_never_overwrites_a_result(store: Store) -> None:
    thread = await _thread(store)
    pending = await store.start_turn(
        thread.id, parent_id=None, user="U1", prompt="p", ratio=None, model=MODEL, inputs=()
    )
    failed = await store.fail_turn(pending.id, error="The prompt was blocked.")
    assert (failed.status, failed.error) == (TurnStatus.FAILED, "The prompt was blocked.")
    assert await store.get_turn(pending.id) == failed

    done = await done_turn(store, thread.id)
    kept = await store.fail_turn(done.id, error="late")
    assert (kept.status, kept.error) == (TurnStatus.DONE, None)
    with pytest.raises(LookupError):
        await store.fail_turn(done.id + 1000, error="nope")


async def test_lineage_walks_done_ancestors_oldest_first(store: Store) -> None:
    thread = await _thread(store)
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
    assert await store.lineage(ids[-1] + 1000, limit=3) == []


async def test_lineage_skips_failed_ancestors_and_follows_its_branch(store: Store) -> None:
    thread = await _thread(store)
    root = await done_turn(store, thread.id, prompt="root")
    await done_turn(store, thread.id, parent_id=root.id, prompt="other branch")
    bad = await store.start_turn(
        thread.id, parent_id=root.id, user="U1", prompt="bad", ratio=None, model=MODEL, inputs=()
    )
    await store.fail_turn(bad.id, error="blocked")
    leaf = await done_turn(store, thread.id, parent_id=bad.id, prompt="leaf")

    assert [t.prompt for t in await store.lineage(leaf.id, limit=6)] == ["root", "leaf"]
    assert [t.prompt for t in await store.lineage(leaf.id, limit=2)] == ["root", "leaf"]
    pending = await store.start_turn(
        thread.id, parent_id=leaf.id, user="U1", prompt="now", ratio=None, model=MODEL, inputs=()
    )
    assert [t.prompt for t in await store.lineage(pending.id, limit=2)] == ["leaf", "now"]


# -- images ---------------------------------------------------------------------------


async def test_images_come_back_by_hash_in_the_order_asked(store: Store) -> None:
    thread = await _thread(store)
    a, b, c = image("a"), image("b", mime_type="image/jpeg"), image("c", size=5000)
    await done_turn(store, thread.id, inputs=(a, b), outputs=(c,))
    missing = "0" * 64

    loaded = await store.load_images(
        [c.sha256, missing, a.sha256, "not-a-hash", b.sha256, a.sha256]
    )

    assert loaded == [c, a, b, a]
    assert [i.mime_type for i in loaded] == ["image/png", "image/png", "image/jpeg", "image/png"]
    assert await store.load_images([]) == []


async def test_the_same_image_in_two_turns_is_one_image(store: Store) -> None:
    thread = await _thread(store)
    shared = image("shared")
    first = await done_turn(store, thread.id, inputs=(shared,), outputs=(shared,))
    second = await done_turn(store, thread.id, parent_id=first.id, inputs=(shared, shared))

    assert first.inputs == first.outputs == (shared.sha256,)
    assert second.inputs == (shared.sha256, shared.sha256)
    assert await store.load_images([shared.sha256]) == [shared]


# -- start-up after a crash --------------------------------------------------------------


async def test_fail_pending_reports_pending_turns_where_their_thread_lives(store: Store) -> None:
    one = await store.create_thread(ThreadKey("discord", "G1", "C1", "interaction-1"))
    moved = ThreadKey("discord", "G1", "C1", "message-1")
    await store.add_alias(one.id, key=moved)
    two = await _thread(store, "1700000000.000100")
    finished = await done_turn(store, one.id)
    stuck = [
        await store.start_turn(
            thread.id, parent_id=None, user="U1", prompt="p", ratio=None, model=MODEL, inputs=()
        )
        for thread in (one, two)
    ]

    reported = await store.fail_pending(error="The bot restarted during this job.")

    assert [(turn.id, k) for turn, k in reported] == [
        (stuck[0].id, moved),  # the alias: the platform thread made after the first turn
        (stuck[1].id, two.key),
    ]
    assert all(turn.status is TurnStatus.FAILED for turn, _ in reported)
    for turn in stuck:
        now = await store.get_turn(turn.id)
        assert now is not None
        assert (now.status, now.error) == (TurnStatus.FAILED, "The bot restarted during this job.")
    assert (await store.get_turn(finished.id)) == finished
    assert await store.fail_pending(error="again") == []


# -- platform messages and events --------------------------------------------------------


async def test_messages_link_to_turns_both_ways(store: Store) -> None:
    thread = await _thread(store)
    turn = await done_turn(store, thread.id)

    await store.link_message(turn.id, platform="slack", message_id="1700000000.000300")

    assert await store.turn_for_message(platform="slack", message_id="1700000000.000300") == turn
    assert await store.message_for_turn(turn.id, platform="slack") == "1700000000.000300"
    assert await store.message_for_turn(turn.id, platform="discord") is None
    assert await store.turn_for_message(platform="discord", message_id="1700000000.000300") is None
    assert await store.turn_for_message(platform="slack", message_id="other") is None


async def test_an_event_is_claimed_once_per_platform(store: Store) -> None:
    assert await store.claim_event(platform="slack", event_id="Ev1") is True
    assert await store.claim_event(platform="slack", event_id="Ev1") is False
    assert await store.claim_event(platform="slack", event_id="Ev1") is False
    assert await store.claim_event(platform="discord", event_id="Ev1") is True
    assert await store.claim_event(platform="slack", event_id="Ev2") is True


# -- usage -----------------------------------------------------------------------------


async def test_jobs_since_counts_a_users_unfailed_turns_on_a_platform(
    store: Store, clock: Clock
) -> None:
    slack = await _thread(store, "s")
    discord = await _thread(store, "d", platform="discord")
    await done_turn(store, slack.id, user="U1")  # at START
    clock.advance(hours=1)
    await done_turn(store, slack.id, user="U1")
    await store.start_turn(
        slack.id, parent_id=None, user="U1", prompt="p", ratio=None, model=MODEL, inputs=()
    )  # pending counts
    failed = await store.start_turn(
        slack.id, parent_id=None, user="U1", prompt="p", ratio=None, model=MODEL, inputs=()
    )
    await store.fail_turn(failed.id, error="x")
    await done_turn(store, slack.id, user="U2")
    await done_turn(store, discord.id, user="U1")

    assert await store.jobs_since(platform="slack", user="U1", since=START) == 3
    assert await store.jobs_since(platform="slack", user="U1", since=clock.now) == 2
    assert await store.jobs_since(platform="slack", user="U2", since=START) == 1
    assert await store.jobs_since(platform="discord", user="U1", since=START) == 1
    assert await store.jobs_since(platform="slack", user="U1", since=clock.advance(seconds=1)) == 0


async def test_usage_totals_sum_the_ledger_by_day_workspace_and_user(
    store: Store, clock: Clock
) -> None:
    t1 = await _thread(store, "a", workspace="T1")
    t2 = await _thread(store, "b", workspace="T2")
    usage = Usage(input_tokens=10, output_tokens=1290, total_tokens=1300, images=1)
    await done_turn(store, t1.id, user="U1", usage=usage, cost_usd=0.039)
    clock.advance(days=1)
    day_two = clock.now.date()
    await done_turn(store, t1.id, user="U1", usage=usage, cost_usd=0.039)
    await done_turn(store, t1.id, user="U2", usage=usage, cost_usd=0.039, outputs=())
    await done_turn(store, t2.id, user="U1", usage=usage, cost_usd=0.039)

    everything = await store.usage_totals(platform="slack", user="U1", since=START.date())
    assert everything.jobs == 3 and everything.images == 3
    assert (everything.input_tokens, everything.output_tokens) == (30, 3870)
    assert everything.cost_usd == pytest.approx(0.117)
    second_day = await store.usage_totals(platform="slack", user="U1", since=day_two)
    assert (second_day.jobs, second_day.images) == (2, 2)
    workspace = await store.usage_totals(platform="slack", workspace="T1", since=day_two)
    assert (workspace.jobs, workspace.images) == (2, 1)
    both = await store.usage_totals(platform="slack", workspace="T1", user="U1", since=START.date())
    assert both.jobs == 2
    later = day_two + timedelta(days=1)
    assert await store.usage_totals(platform="slack", user="U1", since=later) == UsageTotals()
    assert await store.usage_totals(platform="discord", user="U1", since=START.date()) == (
        UsageTotals()
    )


# -- retention -------------------------------------------------------------------------


async def test_prune_removes_old_turns_and_the_images_only_they_used(
    store: Store, clock: Clock
) -> None:
    old_thread, mixed = await _thread(store, "old"), await _thread(store, "mixed")
    shared, lost = image("shared"), image("lost")
    gone = await done_turn(store, old_thread.id, inputs=(shared,), outputs=(lost,))
    await store.link_message(gone.id, platform="slack", message_id="m-old")
    old_root = await done_turn(store, mixed.id, outputs=(image("old-root"),))
    cutoff = clock.advance(days=30)
    kept = await done_turn(store, mixed.id, parent_id=old_root.id, inputs=(shared,))

    removed = await store.prune(before=cutoff)

    assert removed == 2
    assert await store.get_turn(gone.id) is None
    assert await store.get_turn(old_root.id) is None
    assert await store.load_images([lost.sha256, image("old-root").sha256]) == []
    assert await store.load_images([shared.sha256, *kept.outputs]) == [
        shared,
        image("out:a banana"),
    ]
    assert await store.turn_for_message(platform="slack", message_id="m-old") is None
    survivor = await store.get_turn(kept.id)
    assert survivor is not None and survivor.parent_id is None
    assert await store.lineage(kept.id, limit=6) == [survivor]

    pruned = await store.get_thread(old_thread.key)
    assert pruned is not None and (pruned.pruned, pruned.head_id) == (True, None)
    alive = await store.get_thread(mixed.key)
    assert alive is not None and (alive.pruned, alive.head_id) == (False, kept.id)
    assert await store.prune(before=cutoff) == 0


async def test_a_pruned_thread_comes_back_to_life_with_a_new_turn(
    store: Store, clock: Clock
) -> None:
    thread = await _thread(store)
    await done_turn(store, thread.id)
    await done_turn(store, thread.id)
    await store.prune(before=clock.advance(days=1))

    again = await done_turn(store, thread.id)

    after = await store.get_thread(thread.key)
    assert after is not None
    assert (after.pruned, after.head_id, again.number) == (False, again.id, 3)


async def test_prune_forgets_old_event_ids(store: Store, clock: Clock) -> None:
    await store.claim_event(platform="slack", event_id="Ev-old")
    clock.advance(hours=2)
    await store.claim_event(platform="slack", event_id="Ev-recent")
    clock.advance(hours=23)

    await store.prune(before=clock.now - timedelta(days=30))

    assert await store.claim_event(platform="slack", event_id="Ev-recent") is False
    assert await store.claim_event(platform="slack", event_id="Ev-old") is True


async def test_ping_answers_while_open(backend: str, tmp_path: Path, clock: Clock) -> None:
    store = _make_store(backend, tmp_path, clock)
    assert await store.ping() is False
    await store.open()
    assert await store.ping() is True
    await store.close()
    assert await store.ping() is False
