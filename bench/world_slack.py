"""The Slack side of bench.world_process: signed events out, uploads and reactions watched.

Each job is one signed delivery: an `app_mention` (optionally with files, hosted on the fake
for the bot to download from `url_private`), or, with `thread_ts`, a plain message in one of
the bot's threads (a refinement). The fake reports `sent` (the job, when its POST began),
`upload` (a thread's files.completeUploadExternal) and `settled` (the job's final reaction:
the bot has nothing more to do for it).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
from slack_sdk.signature import SignatureVerifier

from bench.world_wire import SMALL_SIDE, emit
from tests.fakes.gptproto_images import make_image
from tests.fakes.slack import FakeSlack, event_callback, message_event
from tests.fakes.slack.workspace import Answer

CHANNEL = "C0001"
# The reactions that end a job (adapters/slack/replies.py: SUCCEEDED, FAILED).
FINAL_REACTIONS = {"white_check_mark": True, "x": False}

Job = dict[str, str]


class SlackSide:
    """The fake Slack, instrumented; it sends what users send and forgets what it received."""

    def __init__(self, fake: FakeSlack, session: aiohttp.ClientSession) -> None:
        self.fake = fake
        self._session = session
        self._anchors: dict[str, str] = {}  # the asker's message ts -> job
        self._watch()

    def ready(self) -> dict[str, str]:
        return {"slack_api": self.fake.api_url, "bot_token": self.fake.bot_token}

    def _watch(self) -> None:
        workspace = self.fake.workspace
        complete = workspace.m_files_completeUploadExternal
        react = workspace.m_reactions_add

        def completed(params: dict[str, Any]) -> Answer:
            answer = complete(params)
            emit(upload=params.get("thread_ts"), t=time.monotonic(), ok=answer.get("ok"))
            workspace.uploads.clear()  # megabytes each: a long run must not pile them up
            return answer

        def reacted(params: dict[str, Any]) -> Answer:
            answer = react(params)
            name, ts = params.get("name", ""), params.get("timestamp", "")
            if ts in self._anchors and name in FINAL_REACTIONS:
                emit(settled=self._anchors.pop(ts), t=time.monotonic(), ok=FINAL_REACTIONS[name])
                self.fake.calls.clear()  # what a long run must not pile up
                self.fake.downloads.clear()
            return answer

        workspace.m_files_completeUploadExternal = completed  # type: ignore[method-assign, assignment]
        workspace.m_reactions_add = reacted  # type: ignore[method-assign, assignment]

    async def send(self, command: dict[str, Any]) -> None:
        """POST one signed delivery per job, all at once, as Slack would deliver them."""
        verifier = SignatureVerifier(command["secret"])
        # Files are hosted before the first POST, so no job's clock runs while they are read.
        bodies = [(job, json.dumps(event_callback(self._event(job)))) for job in command["jobs"]]
        await asyncio.gather(*(self._post(command["url"], verifier, *each) for each in bodies))

    def _event(self, job: Job) -> dict[str, Any]:
        self._anchors[job["ts"]] = job["job"]
        files = self._files(job.get("attach"), job["job"])
        if job.get("thread_ts"):
            return message_event(
                job["text"],
                channel=CHANNEL,
                ts=job["ts"],
                user=job["user"],
                thread_ts=job["thread_ts"],
                files=files,
            )
        return message_event(
            f"<@UBOT> {job['text']}",
            kind="app_mention",
            channel=CHANNEL,
            ts=job["ts"],
            user=job["user"],
            files=files,
        )

    def _files(self, attach: str | None, job: str) -> list[dict[str, Any]] | None:
        """`png`: a small PNG of the job's own; else the path of a JPEG to attach."""
        if not attach:
            return None
        if attach == "png":
            data = make_image(int(job), SMALL_SIDE)
            return [self.fake.add_file(f"sketch-{job}.png", data, mimetype="image/png")]
        path = Path(attach)
        return [self.fake.add_file(path.name, path.read_bytes(), mimetype="image/jpeg")]

    async def _post(self, url: str, verifier: SignatureVerifier, job: Job, body: str) -> None:
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": verifier.generate_signature(timestamp=stamp, body=body) or "",
        }
        sent = time.monotonic()
        async with self._session.post(url, data=body.encode(), headers=headers) as answer:
            await answer.read()
            emit(sent=job["job"], t=sent, status=answer.status)
