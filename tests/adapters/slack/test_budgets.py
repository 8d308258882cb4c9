"""`/imagine budget ...`: admins see and set monthly budgets; a request over one is refused."""

from __future__ import annotations

from tests.fakes.gptproto import FakeGptProto
from tests.fakes.slack import slash_command
from tests.fakes.slack.harness import USER, SlackBot, StartSlack

ADMIN = "UADMIN"


async def budget(slack: SlackBot, text: str, *, user: str = ADMIN) -> str:
    """The command's answer, which only its sender sees."""
    status, body = await slack.sender.command(slash_command(f"budget {text}".strip(), user=user))
    assert status == 200
    return body


async def test_an_admin_sets_a_user_budget_and_the_next_request_over_it_is_refused(
    start_slack: StartSlack, gptproto: FakeGptProto
) -> None:
    slack = await start_slack(admin_user_ids=ADMIN)
    said = await budget(slack, f"user <@{USER}|alice> 0.05")
    assert said == f"The monthly budget of user {USER} is now $0.05."

    first = await slack.mention("a lighthouse")  # $0.039 of 2.5 Flash
    await slack.settle()
    assert len(slack.fake.uploads) == 1
    second = await slack.mention("another lighthouse")
    await slack.settle()

    # Refused before anything is posted for it: only the asker is told, in a whisper.
    assert len(gptproto.generations) == 1
    assert slack.said(second["ts"]) == []
    [refusal] = [w.text for w in slack.whispered() if w.thread_ts == second["ts"]]
    assert "That would pass your monthly budget of $0.05: $0.04 is spent this month" in refusal
    assert first["ts"] != second["ts"]

    report = await budget(slack, "")
    assert "Spent here this month: $0.04." in report
    assert f"user {USER}: $0.05 a month" in report


async def test_a_workspace_budget_set_then_removed(
    start_slack: StartSlack, gptproto: FakeGptProto
) -> None:
    slack = await start_slack(admin_user_ids=ADMIN)
    assert await budget(slack, "workspace 0.01") == (
        "The monthly budget of the workspace is now $0.01."
    )
    refused = await slack.mention("a lighthouse")
    await slack.settle()
    assert gptproto.generations == []
    assert slack.said(refused["ts"]) == []
    [said] = [w.text for w in slack.whispered() if w.thread_ts == refused["ts"]]
    assert "That would pass this workspace's monthly budget of $0.01" in said

    assert await budget(slack, "workspace off") == "Removed the monthly budget of the workspace."
    allowed = await slack.mention("a lighthouse")
    await slack.settle()
    assert len(gptproto.generations) == 1
    assert slack.fake.uploads[-1].thread_ts == allowed["ts"]


async def test_budgets_are_for_admins_and_roles_mean_nothing_on_slack(
    start_slack: StartSlack, gptproto: FakeGptProto
) -> None:
    slack = await start_slack(admin_user_ids=ADMIN)
    assert await budget(slack, "", user=USER) == (
        "Only the bot's admins (ADMIN_USER_IDS) can see and change budgets."
    )
    assert await budget(slack, "workspace 5", user=USER) == (
        "Only the bot's admins (ADMIN_USER_IDS) can see and change budgets."
    )
    assert (await budget(slack, "role R1 5")).startswith("Slack has no roles the bot can see")
    assert (await budget(slack, "user alice 5")).startswith("Name the user by member id")
    wrong = await budget(slack, "workspace lots")
    assert wrong.startswith("'lots' is not an amount in USD.")
    assert "`/imagine budget workspace USD|off`" in wrong and "role" not in wrong
    shown = await budget(slack, "")
    assert shown.startswith("Spent here this month: $0.00.\nNo budgets are set.")
    assert slack.fake.called("chat.postMessage") == [] and gptproto.generations == []
