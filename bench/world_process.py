"""The world outside the bot, in its own process: the gptproto fake and the Slack fake.

Run as `python -m bench.world_process --latency S --padding BYTES`. Their CPU and memory are
then not the bot's. It speaks JSON lines: commands on stdin, and on stdout a `ready` line with
the URLs, then one line per generation served (`served`: the time the request spent inside
the fake upstream, to be subtracted), per file shared on Slack (`upload`), per mention sent
(`sent`), and the answers to `stats` and `reset`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.gptproto import FakeGptProto
from tests.fakes.slack import FakeSlack
from tests.fakes.slack.events import event_callback, message_event
from tests.fakes.slack.workspace import Answer

JOB_TAG = re.compile(rb"\[job:(\d+)\]")
CHANNEL = "C0001"


def emit(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


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
            tags = JOB_TAG.findall(raw)
            if tags:
                emit(served=tags[-1].decode(), t0=started, t1=time.monotonic())
            self.clear()  # a long run of megabyte answers must not pile up here


def watch_uploads(slack: FakeSlack) -> None:
    """Report every completed upload by the thread it went to, and forget its bytes."""
    complete = slack.workspace.m_files_completeUploadExternal

    def completed(params: dict[str, Any]) -> Answer:
        answer = complete(params)
        emit(upload=params.get("thread_ts"), t=time.monotonic(), ok=answer.get("ok"))
        slack.workspace.uploads.clear()
        slack.calls[:] = [call for call in slack.calls if call.method != "upload"]
        return answer

    slack.workspace.m_files_completeUploadExternal = completed  # type: ignore[method-assign, assignment]


async def send_mentions(
    session: aiohttp.ClientSession, command: dict[str, Any], verifier: Any
) -> None:
    """POST one signed app_mention per job, all at once, as Slack would deliver them."""

    async def one(job: dict[str, str]) -> None:
        event = message_event(
            f"<@UBOT> {job['text']}",
            kind="app_mention",
            channel=CHANNEL,
            ts=job["ts"],
            user=job["user"],
        )
        body = json.dumps(event_callback(event))
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": verifier.generate_signature(timestamp=stamp, body=body),
        }
        sent = time.monotonic()
        async with session.post(command["url"], data=body.encode(), headers=headers) as answer:
            await answer.read()
            emit(sent=job["job"], t=sent, status=answer.status)

    await asyncio.gather(*(one(job) for job in command["jobs"]))


async def serve(latency: float, padding: int) -> None:
    from slack_sdk.signature import SignatureVerifier

    upstream = TimedUpstream(latency=latency, image_padding=padding)
    async with upstream, FakeSlack() as slack, aiohttp.ClientSession() as session:
        watch_uploads(slack)
        emit(
            ready=True,
            gptproto=upstream.url,
            slack_api=slack.api_url,
            bot_token=slack.bot_token,
        )
        loop = asyncio.get_running_loop()
        pending: set[asyncio.Task[None]] = set()
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            command = json.loads(line)
            name = command["cmd"]
            if name == "quit":
                break
            if name == "stats":
                emit(stats={"peak_in_flight": upstream.peak_in_flight, "served": upstream.served})
            elif name == "reset":
                upstream.peak_in_flight = upstream.served = 0
                upstream.clear()
                slack.calls.clear()
                emit(reset=True)
            elif name == "mentions":
                verifier = SignatureVerifier(command["secret"])
                task = asyncio.create_task(send_mentions(session, command, verifier))
                pending.add(task)
                task.add_done_callback(pending.discard)
        for task in pending:
            task.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--padding", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.latency, args.padding))


if __name__ == "__main__":
    main()
