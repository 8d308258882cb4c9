"""The Discord side of bench.world_process: mentions out on the gateway, replies watched on REST.

Each job is one member's message in #general mentioning the bot, with a small PNG of its own
on the fake CDN (the bot downloads it from the attachment's URL). The fake reports `sent`
(the job, when the MESSAGE_CREATE went out), `reply` (the bot's reply carrying the file
arrived on the fake REST, multipart read), and `settled` (the hint the bot posts in the
thread it opens from its result: its last step for the job).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.world_wire import SMALL_SIDE, emit, job_of
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.payloads import Member
from tests.fakes.gptproto_images import make_image

# adapters/discord/progress.py: the notice a queued job shows before its result replaces it.
QUEUE_NOTICES = ("You are #", "Making your image")


class DiscordSide:
    """The fake Discord, instrumented; it forgets the files the bot uploads."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self._members: dict[str, Member] = {}
        self._watch()

    def ready(self) -> dict[str, str]:
        fake = self.fake
        return {
            "discord_api": fake.api_base,
            "discord_gateway": fake.gateway_url,
            "discord_token": fake.token,
            "discord_guild": str(fake.world.guild.id),
        }

    def _watch(self) -> None:
        world = self.fake.world
        create = world.create_message

        async def created(channel_id: int, **kwargs: Any) -> dict[str, Any]:
            arrived = time.monotonic()  # the request is read (multipart included) by now
            message = await create(channel_id, **kwargs)
            if message["author"]["id"] == world.bot["id"]:
                self._observe(message, arrived)
            return message

        world.create_message = created  # type: ignore[method-assign]

    def _observe(self, message: dict[str, Any], arrived: float) -> None:
        """A message by the bot: a job's reply, or the hint in the thread opened from one."""
        world = self.fake.world
        asked = message.get("referenced_message")
        if asked is not None:
            job = job_of(str(asked.get("content") or ""))
            content = str(message.get("content") or "")
            if job is None or content.startswith(QUEUE_NOTICES):
                return
            ok = bool(message["attachments"])
            emit(reply=job, t=arrived, ok=ok, text="" if ok else content[:300])
            for attachment in message["attachments"]:
                world.files.pop(int(attachment["id"]), None)  # megabytes: not kept
            return
        channel = int(message["channel_id"])
        if channel in world.guild.threads:  # a thread's id is its result message's id
            result = world.messages.get(channel) or {}
            job = job_of(str((result.get("referenced_message") or {}).get("content") or ""))
            if job is not None:
                emit(settled=job, t=arrived, ok=True)
                self.fake.recorder.calls.clear()  # uploads included: a long run piles them up

    def _member(self, name: str) -> Member:
        """A member per name (each job its own user, as the per-user limits expect)."""
        if name not in self._members:
            self._members[name] = self.fake.world.add_member(name)
        return self._members[name]

    async def send(self, command: dict[str, Any]) -> None:
        """One mention per job, all at once."""
        jobs: list[dict[str, str]] = command["jobs"]
        uploads = [
            (make_image(int(job["job"]), SMALL_SIDE), f"sketch-{job['job']}.png", "image/png")
            for job in jobs
        ]
        pairs = zip(jobs, uploads, strict=True)
        await asyncio.gather(*(self._one(job, upload) for job, upload in pairs))

    async def _one(self, job: dict[str, str], upload: tuple[bytes, str, str]) -> None:
        world = self.fake.world
        author = self._member(job["user"])
        sent = time.monotonic()
        await self.fake.send_message(
            world.general, job["text"], author=author, attachments=[upload], mention_bot=True
        )
        emit(sent=job["job"], t=sent, status=200)
