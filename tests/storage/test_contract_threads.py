"""The Store contract, threads and their keys; every backend of conftest.BACKENDS runs it."""

from __future__ import annotations

import pytest

from bot.models import ThreadKey
from storage.base import Store
from tests.support.store import START, done_turn, key, new_thread


async def test_a_new_thread_is_found_by_its_key(store: Store) -> None:
    created = await store.create_thread(key("1700000000.000100"))

    found = await store.get_thread(key("1700000000.000100"))

    assert found == created
    assert (found.head_id, found.turn_count, found.pruned) == (None, 0, False)
    assert found.created_at == START
    assert await store.get_thread(key("1700000000.000200")) is None


async def test_creating_a_taken_key_returns_the_existing_thread(store: Store) -> None:
    first = await new_thread(store)
    await done_turn(store, first.id)

    again = await new_thread(store)

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
    first = await new_thread(store, "first")
    second = await new_thread(store, "second")
    await store.add_alias(second.id, key=key("second-alias"))

    assert await store.thread_key(first.id) == key("first")
    assert await store.thread_key(second.id) == key("second")
    assert await store.thread_key(first.id + second.id + 100) is None


async def test_an_alias_cannot_take_another_threads_key(store: Store) -> None:
    first = await new_thread(store, "a")
    second = await new_thread(store, "b")

    with pytest.raises(ValueError, match="already names"):
        await store.add_alias(second.id, key=key("a"))
    with pytest.raises(LookupError):
        await store.add_alias(second.id + first.id + 100, key=key("c"))

    found = await store.get_thread(key("a"))
    assert found is not None and found.id == first.id
    assert await store.get_thread(key("c")) is None


# -- open and closed ----------------------------------------------------------------------


async def test_ping_answers_while_open(unopened_store: Store) -> None:
    store = unopened_store
    assert await store.ping() is False
    await store.open()
    assert await store.ping() is True
    await store.close()
    assert await store.ping() is False


async def test_a_store_answers_only_while_open_and_keeps_what_it_stored(
    unopened_store: Store,
) -> None:
    store = unopened_store
    with pytest.raises(RuntimeError, match="not open"):
        await store.create_thread(key("early"))
    await store.open()
    created = await store.create_thread(key("kept"))
    await store.close()
    with pytest.raises(RuntimeError, match="not open"):
        await store.get_thread(key("kept"))

    await store.open()
    try:
        assert await store.get_thread(key("kept")) == created
    finally:
        await store.close()
