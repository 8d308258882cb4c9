"""Access rules: allow lists, block list, roles, admins; the engine applies them before any work."""

from __future__ import annotations

import pytest

from bot.engine import AccessPolicy
from bot.errors import AccessDenied
from tests.support.engine import fast_engine, request


def _ids(*values: str) -> frozenset[str]:
    return frozenset(values)


def test_an_empty_policy_lets_everyone_in_everywhere() -> None:
    AccessPolicy().check(request("t", user="UANY", channel="CANY"))


def test_the_block_list_wins_over_every_allowance() -> None:
    policy = AccessPolicy(
        allowed_users=_ids("UMAL"), admins=_ids("UMAL"), blocked_users=_ids("UMAL")
    )
    with pytest.raises(AccessDenied, match="blocked"):
        policy.check(request("t", user="UMAL"))
    AccessPolicy(blocked_users=_ids("UMAL")).check(request("t", user="UOTHER"))


def test_allowed_channels_refuse_other_channels_but_admins_pass() -> None:
    policy = AccessPolicy(allowed_channels=_ids("CART"), admins=_ids("UADMIN"))
    policy.check(request("t", channel="CART"))
    with pytest.raises(AccessDenied, match="not enabled in this channel"):
        policy.check(request("t", channel="CRANDOM"))
    policy.check(request("t", channel="CRANDOM", user="UADMIN"))


def test_allowed_users_and_roles_each_grant_access() -> None:
    policy = AccessPolicy(allowed_users=_ids("UALICE"), allowed_roles=_ids("RARTIST"))
    policy.check(request("t", user="UALICE"))
    policy.check(request("t", user="UBOB", roles=("REVERYONE", "RARTIST")))
    with pytest.raises(AccessDenied, match="allowed users"):
        policy.check(request("t", user="UBOB", roles=("REVERYONE",)))


def test_roles_alone_restrict_access() -> None:
    policy = AccessPolicy(allowed_roles=_ids("RARTIST"))
    with pytest.raises(AccessDenied):
        policy.check(request("t", user="UALICE"))
    policy.check(request("t", user="UALICE", roles=("RARTIST",)))


def test_a_channel_rule_and_a_user_rule_both_apply() -> None:
    policy = AccessPolicy(allowed_channels=_ids("CART"), allowed_users=_ids("UALICE"))
    policy.check(request("t", user="UALICE", channel="CART"))
    with pytest.raises(AccessDenied, match="channel"):
        policy.check(request("t", user="UALICE", channel="COTHER"))
    with pytest.raises(AccessDenied, match="allowed users"):
        policy.check(request("t", user="UBOB", channel="CART"))


def test_admins_pass_the_user_list_and_are_reported_as_admins() -> None:
    policy = AccessPolicy(allowed_users=_ids("UALICE"), admins=_ids("UADMIN"))
    policy.check(request("t", user="UADMIN"))
    assert policy.is_admin("UADMIN") and not policy.is_admin("UALICE")


def test_refusals_are_user_facing_sentences() -> None:
    policy = AccessPolicy(blocked_users=_ids("UMAL"))
    with pytest.raises(AccessDenied) as refused:
        policy.check(request("t", user="UMAL"))
    assert refused.value.user_message == "You have been blocked from using this bot."
    assert refused.value.exit_code == 5


async def test_the_engine_refuses_before_any_upstream_call() -> None:
    policy = AccessPolicy(allowed_channels=_ids("CART"), blocked_users=_ids("UMAL"))
    async with fast_engine(access=policy) as (engine, store, generator):
        with pytest.raises(AccessDenied):
            await engine.imagine(request("t1", channel="COTHER"))
        with pytest.raises(AccessDenied):
            await engine.imagine(request("t2", user="UMAL", channel="CART"))
        reply = await engine.imagine(request("t3", channel="CART"))
        with pytest.raises(AccessDenied):
            await engine.reroll(reply.turn.id, user="UMAL")
        with pytest.raises(AccessDenied):
            await engine.refine(request("t3", "bluer", user="UMAL", channel="CART"))
        assert len(generator.calls) == 1
        assert await store.get_thread(request("t1", channel="COTHER").key) is None
