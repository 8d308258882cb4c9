"""The Store contract, beside the turns: crash recovery, message links, events, usage, retention."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.models import ThreadKey, TurnStatus, Usage, UsageTotals
from storage.base import Store
from tests.support.store import (
    LEASE,
    OWNER,
    START,
    Clock,
    claim,
    done_turn,
    image,
    new_thread,
    pending_turn,
)

# -- after a crash -----------------------------------------------------------------------


async def test_fail_expired_reports_turns_whose_lease_ran_out_where_their_thread_lives(
    store: Store, clock: Clock
) -> None:
    one = await store.create_thread(ThreadKey("discord", "G1", "C1", "interaction-1"))
    moved = ThreadKey("discord", "G1", "C1", "message-1")
    await store.add_alias(one.id, key=moved)
    two = await new_thread(store, "1700000000.000100")
    finished = await done_turn(store, one.id)
    stuck = [await pending_turn(store, thread.id) for thread in (one, two)]
    platforms = ("discord", "slack")
    assert await store.fail_expired(error="too early", platforms=platforms) == []
    clock.advance(seconds=LEASE + 1)

    reported = await store.fail_expired(
        error="The bot restarted during this job.", platforms=platforms
    )

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
    assert await store.fail_expired(error="again", platforms=platforms) == []


async def test_fail_expired_leaves_turns_of_platforms_the_caller_does_not_serve(
    store: Store, clock: Clock
) -> None:
    discord = await store.create_thread(ThreadKey("discord", "G1", "C1", "m-1"))
    slack = await new_thread(store, "1700000000.000100")
    on_discord = await pending_turn(store, discord.id)
    on_slack = await pending_turn(store, slack.id)
    clock.advance(seconds=LEASE + 1)

    reported = await store.fail_expired(error="lost", platforms=("slack",))

    assert [turn.id for turn, _ in reported] == [on_slack.id]
    left = await store.get_turn(on_discord.id)
    assert left is not None and left.status is TurnStatus.PENDING


# -- platform messages and events --------------------------------------------------------


async def test_messages_link_to_turns_both_ways(store: Store) -> None:
    thread = await new_thread(store)
    turn = await done_turn(store, thread.id)

    await store.link_message(turn.id, platform="slack", message_id="1700000000.000300")

    assert await store.turn_for_message(platform="slack", message_id="1700000000.000300") == turn
    assert await store.message_for_turn(turn.id, platform="slack") == "1700000000.000300"
    assert await store.message_for_turn(turn.id, platform="discord") is None
    assert await store.turn_for_message(platform="discord", message_id="1700000000.000300") is None
    assert await store.turn_for_message(platform="slack", message_id="other") is None
    with pytest.raises(LookupError):
        await store.link_message(turn.id + 1000, platform="slack", message_id="1700000000.000300")
    assert await store.turn_for_message(platform="slack", message_id="1700000000.000300") == turn


async def test_an_event_is_claimed_once_per_platform(store: Store) -> None:
    assert await claim(store, "Ev1") is True
    assert await claim(store, "Ev1") is False
    assert await claim(store, "Ev1", owner="other") is False
    assert await claim(store, "Ev1", platform="discord") is True
    assert await claim(store, "Ev2") is True


# -- usage -----------------------------------------------------------------------------


async def test_jobs_since_counts_a_users_unfailed_turns_on_a_platform(
    store: Store, clock: Clock
) -> None:
    slack = await new_thread(store, "s")
    discord = await new_thread(store, "d", platform="discord")
    await done_turn(store, slack.id, user="U1")  # at START
    clock.advance(hours=1)
    await done_turn(store, slack.id, user="U1")
    await pending_turn(store, slack.id)  # pending counts
    failed = await pending_turn(store, slack.id)
    await store.fail_turn(failed.id, error="x")
    await done_turn(store, slack.id, user="U2")
    await done_turn(store, discord.id, user="U1")

    assert await store.jobs_since(platform="slack", user="U1", since=START) == 3
    assert await store.jobs_since(platform="slack", user="U1", since=clock.now) == 2
    naive = clock.now.replace(tzinfo=None)  # taken as UTC
    assert await store.jobs_since(platform="slack", user="U1", since=naive) == 2
    assert await store.jobs_since(platform="slack", user="U2", since=START) == 1
    assert await store.jobs_since(platform="discord", user="U1", since=START) == 1
    assert await store.jobs_since(platform="slack", user="U1", since=clock.advance(seconds=1)) == 0


async def test_usage_totals_sum_the_ledger_by_day_workspace_and_user(
    store: Store, clock: Clock
) -> None:
    t1 = await new_thread(store, "a", workspace="T1")
    t2 = await new_thread(store, "b", workspace="T2")
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
    old_thread, mixed = await new_thread(store, "old"), await new_thread(store, "mixed")
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


async def test_a_thread_whose_head_is_pruned_falls_back_to_a_result_left(
    store: Store, clock: Clock
) -> None:
    thread, other = await new_thread(store, "a"), await new_thread(store, "b")
    slow = await pending_turn(store, thread.id)  # started first, finished last: the head
    await done_turn(store, other.id)
    clock.advance(days=1)
    quick = await done_turn(store, thread.id)
    await store.finish_turn(
        slow.id, owner=OWNER, outputs=(), text="", usage=Usage(), parts_json="[]"
    )
    await pending_turn(store, other.id)

    assert await store.prune(before=START + timedelta(hours=12)) == 2

    after = await store.get_thread(thread.key)
    assert after is not None and (after.head_id, after.pruned) == (quick.id, False)
    unfinished = await store.get_thread(other.key)  # only a pending turn left
    assert unfinished is not None and (unfinished.head_id, unfinished.pruned) == (None, False)


async def test_a_pruned_thread_comes_back_to_life_with_a_new_turn(
    store: Store, clock: Clock
) -> None:
    thread = await new_thread(store)
    await done_turn(store, thread.id)
    await done_turn(store, thread.id)
    await store.prune(before=clock.advance(days=1))

    again = await done_turn(store, thread.id)

    after = await store.get_thread(thread.key)
    assert after is not None
    assert (after.pruned, after.head_id, again.number) == (False, again.id, 3)


async def test_prune_forgets_old_event_ids(store: Store, clock: Clock) -> None:
    await claim(store, "Ev-old")
    await store.settle_claims(platform="slack", event_ids=["Ev-old"], owner=OWNER)
    clock.advance(hours=2)
    await claim(store, "Ev-recent")
    await store.settle_claims(platform="slack", event_ids=["Ev-recent"], owner=OWNER)
    clock.advance(hours=23)

    await store.prune(before=clock.now - timedelta(days=30))

    assert await claim(store, "Ev-recent") is False
    assert await claim(store, "Ev-old") is True


# -- health ---------------------------------------------------------------------------------


async def test_the_write_probe_commits_while_open_and_fails_once_closed(
    unopened_store: Store,
) -> None:
    assert await unopened_store.probe_write() is False
    await unopened_store.open()
    assert await unopened_store.probe_write() is True
    assert await unopened_store.probe_write() is True  # a rewrite, not a second row
    await unopened_store.close()
    assert await unopened_store.probe_write() is False
