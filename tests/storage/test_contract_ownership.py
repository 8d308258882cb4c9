"""The Store contract for several processes on one store: turn leases, claims, named leases."""

from __future__ import annotations

import pytest

from bot.errors import AlreadyHandled
from bot.models import TurnStatus, Usage
from storage.base import Store
from tests.support.store import (
    LEASE,
    OWNER,
    Clock,
    claim,
    done_turn,
    image,
    new_thread,
    pending_turn,
)

OTHER = "host:2:other"


async def _finish(store: Store, turn_id: int, *, owner: str = OWNER) -> None:
    await store.finish_turn(
        turn_id, owner=owner, outputs=(image("late"),), text="", usage=Usage(), parts_json="[]"
    )


# -- turn leases --------------------------------------------------------------------------


async def test_a_turn_whose_owner_renews_it_is_never_taken(store: Store, clock: Clock) -> None:
    thread = await new_thread(store)
    pending = await pending_turn(store, thread.id)
    for _ in range(5):
        clock.advance(seconds=LEASE * 2 / 3)
        assert await store.renew(owner=OWNER, lease=LEASE) == 1
        assert await store.fail_expired(error="lost", platforms=("slack",)) == []
    await _finish(store, pending.id)
    done = await store.get_turn(pending.id)
    assert done is not None and done.status is TurnStatus.DONE
    assert await store.renew(owner=OWNER, lease=LEASE) == 0  # nothing held any more


async def test_only_the_owner_finishes_a_turn(store: Store) -> None:
    thread = await new_thread(store)
    pending = await pending_turn(store, thread.id)
    with pytest.raises(LookupError):
        await _finish(store, pending.id, owner=OTHER)
    left = await store.get_turn(pending.id)
    assert left is not None and left.status is TurnStatus.PENDING


async def test_an_owner_whose_lease_was_taken_still_finishes_its_turn(
    store: Store, clock: Clock
) -> None:
    thread = await new_thread(store)
    pending = await pending_turn(store, thread.id)
    clock.advance(seconds=LEASE + 1)
    (taken, _), *_ = await store.fail_expired(error="lost", platforms=("slack",))
    assert taken.id == pending.id

    await _finish(store, pending.id)

    done = await store.get_turn(pending.id)
    assert done is not None and (done.status, done.error) == (TurnStatus.DONE, None)
    after = await store.get_thread(thread.key)
    assert after is not None and after.head_id == pending.id
    assert await store.fail_expired(error="again", platforms=("slack",)) == []


# -- claims ---------------------------------------------------------------------------------


async def test_a_claim_held_by_a_live_owner_is_a_repeat_for_everyone(
    store: Store, clock: Clock
) -> None:
    assert await claim(store, "Ev1") is True
    clock.advance(seconds=LEASE - 1)
    assert await claim(store, "Ev1", owner=OTHER) is False
    assert await claim(store, "Ev1") is False  # a second delivery to the same process


async def test_a_claim_whose_owner_died_unsettled_is_taken_over(store: Store, clock: Clock) -> None:
    assert await claim(store, "Ev1", owner=OTHER) is True
    clock.advance(seconds=LEASE + 1)
    assert await claim(store, "Ev1") is True
    assert await claim(store, "Ev1", owner=OTHER) is False


async def test_a_renewed_claim_is_kept(store: Store, clock: Clock) -> None:
    assert await claim(store, "Ev1") is True
    clock.advance(seconds=LEASE - 1)
    assert await store.renew(owner=OWNER, lease=LEASE) == 1
    clock.advance(seconds=LEASE - 1)
    assert await claim(store, "Ev1", owner=OTHER) is False


async def test_a_settled_claim_is_a_repeat_forever_and_a_released_one_is_free(
    store: Store, clock: Clock
) -> None:
    assert await claim(store, "Ev1") and await claim(store, "Ev2")
    await store.settle_claims(platform="slack", event_ids=["Ev1"], owner=OWNER)
    await store.release_claims(platform="slack", event_ids=["Ev2"], owner=OWNER)
    clock.advance(hours=2)
    assert await claim(store, "Ev1", owner=OTHER) is False
    assert await claim(store, "Ev2", owner=OTHER) is True


async def test_only_the_holder_settles_or_releases_a_claim(store: Store) -> None:
    assert await claim(store, "Ev1", owner=OTHER) is True
    await store.release_claims(platform="slack", event_ids=["Ev1"], owner=OWNER)
    await store.settle_claims(platform="slack", event_ids=["Ev1"], owner=OWNER)
    assert await claim(store, "Ev1") is False
    await store.release_claims(platform="slack", event_ids=["Ev1"], owner=OTHER)
    assert await claim(store, "Ev1") is True


async def test_a_turn_settles_its_claims_with_it(store: Store, clock: Clock) -> None:
    thread = await new_thread(store)
    assert await claim(store, "event:Ev1") is True
    turn = await pending_turn(store, thread.id, claims=("event:Ev1", "msg:C1:1.1"))
    clock.advance(seconds=LEASE + 1)
    await store.fail_expired(error="lost", platforms=("slack",))  # the process died
    assert await claim(store, "event:Ev1", owner=OTHER) is False  # recorded: never again
    assert await claim(store, "msg:C1:1.1", owner=OTHER) is False
    assert (await store.get_turn(turn.id)) is not None


async def test_a_turn_whose_claim_another_holds_is_not_stored(store: Store) -> None:
    thread = await new_thread(store)
    assert await claim(store, "event:Ev1", owner=OTHER) is True
    with pytest.raises(AlreadyHandled):
        await pending_turn(store, thread.id, claims=("msg:C1:1.1", "event:Ev1"))
    after = await store.get_thread(thread.key)
    assert after is not None and after.turn_count == 0
    assert await claim(store, "msg:C1:1.1", owner=OTHER) is True  # rolled back with the turn


async def test_a_turn_for_an_event_already_answered_is_not_stored(store: Store) -> None:
    thread = await new_thread(store)
    first = await pending_turn(store, thread.id, claims=("event:Ev1",))
    with pytest.raises(AlreadyHandled):
        await pending_turn(store, thread.id, claims=("event:Ev1",))
    after = await store.get_thread(thread.key)
    assert after is not None and after.turn_count == 1 and first.number == 1


# -- named leases ---------------------------------------------------------------------------


async def test_a_named_lease_has_one_holder_until_it_runs_out_or_is_released(
    store: Store, clock: Clock
) -> None:
    assert await store.acquire_lease("discord-shard:0", owner=OWNER, lease=LEASE) is True
    assert await store.acquire_lease("discord-shard:0", owner=OWNER, lease=LEASE) is True
    assert await store.acquire_lease("discord-shard:0", owner=OTHER, lease=LEASE) is False
    assert await store.acquire_lease("discord-shard:1", owner=OTHER, lease=LEASE) is True
    clock.advance(seconds=LEASE - 1)
    assert await store.renew(owner=OWNER, lease=LEASE) == 1
    clock.advance(seconds=LEASE - 1)
    assert await store.acquire_lease("discord-shard:0", owner=OTHER, lease=LEASE) is False
    clock.advance(seconds=2)
    assert await store.acquire_lease("discord-shard:0", owner=OTHER, lease=LEASE) is True
    await store.release_lease("discord-shard:0", owner=OWNER)  # not OWNER's any more
    assert await store.acquire_lease("discord-shard:0", owner=OWNER, lease=LEASE) is False
    await store.release_lease("discord-shard:0", owner=OTHER)
    assert await store.acquire_lease("discord-shard:0", owner=OWNER, lease=LEASE) is True


# -- limits counted in the store ------------------------------------------------------------


async def test_first_job_since_is_the_oldest_unfailed_turn_in_the_window(
    store: Store, clock: Clock
) -> None:
    thread = await new_thread(store)
    since = clock.now
    assert await store.first_job_since(platform="slack", user="U1", since=since) is None
    failed = await pending_turn(store, thread.id)
    await store.fail_turn(failed.id, error="x")
    clock.advance(seconds=5)
    first = await done_turn(store, thread.id)
    clock.advance(seconds=5)
    await done_turn(store, thread.id)
    await done_turn(store, thread.id, user="U2")
    found = await store.first_job_since(platform="slack", user="U1", since=since)
    assert found == first.created_at
    assert await store.first_job_since(platform="discord", user="U1", since=since) is None
