"""The world outside the bot, in its own process: the gptproto fake, the Slack fake and, with
`--discord`, the Discord fake (gateway, REST and CDN).

Run as `python -m bench.world_process --latency S --padding BYTES [--discord]`. Their CPU and
memory are then not the bot's. It speaks JSON lines: commands on stdin, and on stdout a `ready`
line with the URLs, then one line per generation served (`served`: the time the request spent
inside the fake upstream, to be subtracted), per delivery sent (`sent`), per file shared on
Slack (`upload`) or reply with a file on Discord (`reply`), per job the bot is done with
(`settled`), and the answers to `stats` and `reset`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
from aiohttp import web

from bench.world_discord import DiscordSide
from bench.world_slack import SlackSide
from bench.world_wire import JOB_TAG_BYTES, emit
from tests.fakes.discord import FakeDiscord
from tests.fakes.gptproto import FakeGptProto
from tests.fakes.slack import FakeSlack


class TimedUpstream(FakeGptProto):
    """The gptproto fake, reporting how long each generation spent inside it, keeping nothing."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.served = 0

    def clear(self) -> None:
        self.requests.clear()
        self.produced.clear()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        try:
            return await super()._handle(request)
        finally:
            self.served += 1
            raw = await request.read()  # aiohttp keeps the body: no second read from the wire
            tags = JOB_TAG_BYTES.findall(raw)
            if tags:
                emit(served=tags[-1].decode(), t0=started, t1=time.monotonic())
            self.clear()  # a long run of megabyte answers must not pile up here


class Sides:
    """What the commands act on: the upstream, Slack, and Discord when it was asked for."""

    def __init__(
        self, upstream: TimedUpstream, slack: SlackSide, discord: DiscordSide | None
    ) -> None:
        self.upstream = upstream
        self.slack = slack
        self.discord = discord
        self.pending: set[asyncio.Task[None]] = set()

    def ready(self) -> dict[str, Any]:
        found = {"ready": True, "gptproto": self.upstream.url, **self.slack.ready()}
        return found | (self.discord.ready() if self.discord else {})

    def handle(self, command: dict[str, Any]) -> None:
        name, upstream = command["cmd"], self.upstream
        if name == "stats":
            emit(stats={"peak_in_flight": upstream.peak_in_flight, "served": upstream.served})
        elif name == "reset":
            upstream.peak_in_flight = upstream.served = 0
            upstream.clear()
            self.slack.fake.calls.clear()
            emit(reset=True)
        elif name == "mentions":
            self._spawn(self.slack.send(command))
        elif name == "discord" and self.discord is not None:
            self._spawn(self.discord.send(command))
        else:
            raise ValueError(f"unknown command {name!r}")

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)


async def serve(latency: float, padding: int, *, discord: bool) -> None:
    async with AsyncExitStack() as stack:
        upstream = TimedUpstream(latency=latency, image_padding=padding)
        await stack.enter_async_context(upstream)
        # No connection limit: every event of a burst is POSTed at once, none waits for a
        # connection here (its clock would run for a wait that is not the bot's).
        connector = aiohttp.TCPConnector(limit=0)
        session = await stack.enter_async_context(aiohttp.ClientSession(connector=connector))
        slack = SlackSide(await stack.enter_async_context(FakeSlack()), session)
        discord_side = None
        if discord:
            discord_side = DiscordSide(await stack.enter_async_context(FakeDiscord()))
        sides = Sides(upstream, slack, discord_side)
        emit(**sides.ready())
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            command = json.loads(line)
            if command["cmd"] == "quit":
                break
            sides.handle(command)
        for task in sides.pending:
            task.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--padding", type=int, default=0)
    parser.add_argument("--discord", action="store_true", help="also run the Discord fake")
    args = parser.parse_args()
    asyncio.run(serve(args.latency, args.padding, discord=args.discord))


if __name__ == "__main__":
    main()
