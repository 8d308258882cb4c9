"""Jobs through the bot process's Slack HTTP path, timed from outside by the world's reports.

A job's overhead is its time from the moment the fake Slack began POSTing the event to the
moment files.completeUploadExternal reached it, less the time its request spent inside the
fake upstream (the pause that stands for the model, and making the answer). A round ends when
the bot has put its final reaction on every job's message: nothing of it runs into the next.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from bench.bot_side import SIGNING_SECRET
from bench.sizes import Context
from bench.world import World

PROMPT = "a lighthouse on a cliff at dusk, oil painting"
WITHIN = 90.0  # seconds any one report may take: 200 jobs at once on a busy 2-core machine

Job = dict[str, str]


def overhead(sent: dict[str, Any], ended: dict[str, Any], served: dict[str, Any]) -> float:
    """End to end, less the time inside the fake upstream."""
    return float(ended["t"] - sent["t"]) - float(served["t1"] - served["t0"])


@dataclass
class SlackJobs:
    """Makes jobs (mentions, thread refinements) and runs them through the bot's /slack/events."""

    world: World
    url: str
    context: Context
    stamp: int = field(default_factory=lambda: int(time.time()))

    def mention(self, *, attach: str | None = "png", prompt: str = PROMPT) -> Job:
        """A mention by a user of its own (the per-user limits stay on), with a file attached:
        `png` a small PNG of the job's own, or the path of a photo."""
        number = self.context.next_job()
        job = {
            "job": str(number),
            "text": f"{prompt} [job:{number}]",
            "ts": f"{self.stamp}.{number:06d}",
            "user": f"U{number:06d}",
        }
        if attach:
            job["attach"] = attach
        return job

    def refinement(self, thread_ts: str, *, prompt: str) -> Job:
        """A plain message in one of the bot's threads: it refines the thread's head."""
        return self.mention(attach=None, prompt=prompt) | {"thread_ts": thread_ts}

    async def run(self, jobs: list[Job]) -> list[float]:
        """Deliver the jobs at once; each one's overhead, once the bot is done with all."""
        await self.world.mention(url=self.url, secret=SIGNING_SECRET, jobs=jobs)
        return list(await asyncio.gather(*(self._one(job) for job in jobs)))

    async def _one(self, job: Job) -> float:
        world = self.world
        sent = await world.event("sent", job["job"], within=WITHIN)
        assert sent["status"] == 200, sent
        # The final reaction comes last: by then the upload and the generation were reported.
        settled = await world.event("settled", job["job"], within=WITHIN)
        assert settled["ok"], f"job {job['job']} failed (the bot's log says why)"
        upload = await world.event("upload", job.get("thread_ts") or job["ts"], within=WITHIN)
        assert upload["ok"], upload
        served = await world.event("served", job["job"], within=WITHIN)
        return overhead(sent, upload, served)
