"""Cost per turn: what the upstream is sent on turns 1, 2, 5, 10, 20 of one thread.

Input tokens come from the fake's usageMetadata, which counts them as the service does (258
per image, a token per four characters of text). Beside them: what sending the whole history
would cost, estimated the same way (turn N would carry N images and all N prompts).
"""

from __future__ import annotations

import math

from bench.bot_side import bench_settings, running_engine
from bench.report import Row, judged
from bench.sizes import Context
from bot.models import Request, ThreadKey
from tests.fakes.gptproto import FakeGptProto
from tests.fakes.gptproto_render import IMAGE_INPUT_TOKENS

NAME = "cost per turn"
GROWTH_TARGET = 1.2

# Refinements as people type them: short to medium instructions, one change at a time.
PROMPTS = (
    "a cosy reading nook by a rainy window, warm lamp light, watercolour",
    "make the rain heavier",
    "add a sleeping cat on the armchair",
    "the lamp should be brass, not wood",
    "show more of the bookshelf on the left",
    "make it evening, with a deep blue sky outside",
    "add steam rising from a mug of tea on the side table",
    "the cat should be ginger",
    "softer light, less contrast",
    "put a small potted fern on the windowsill",
    "make the curtains dark green velvet",
    "add a few books stacked on the floor",
    "less saturated colours overall",
    "the window frame should be white",
    "add reflections of the lamp in the window glass",
    "make the armchair look older and more worn",
    "add a knitted blanket over the armchair",
    "slightly wider view of the room",
    "make the rain streaks on the glass more visible",
    "finish it with a subtle paper texture",
)


def full_history_tokens(turn: int) -> int:
    """Turn N with the whole history: N images and all N prompts, counted as the fake counts."""
    chars = sum(len(prompt) for prompt in PROMPTS[:turn])
    return IMAGE_INPUT_TOKENS * turn + max(1, math.ceil(chars / 4))


async def run(context: Context) -> list[Row]:
    sizes = context.sizes
    last = max(sizes.turns)
    key = ThreadKey("slack", "T0001", "C0001", f"cost-{context.next_job()}")
    measured: dict[int, tuple[int, int]] = {}
    async with FakeGptProto() as fake:
        settings = bench_settings(
            gptproto=fake.url,
            database=context.workdir / "cost.db",
            user_jobs_per_minute=0,
            user_jobs_per_day=0,
        )
        async with running_engine(settings, log=context.log) as engine:
            for turn in range(1, last + 1):
                request = Request(key=key, user="UCOST", text=PROMPTS[turn - 1])
                call = engine.imagine if turn == 1 else engine.refine
                reply = await call(request)
                assert reply.turn.number == turn, (reply.turn.number, turn)
                sent = fake.generations[-1]
                measured[turn] = (reply.usage.input_tokens, len(sent.input_images()))
    rows = [
        Row(
            NAME,
            f"turn {turn}: input tokens / images (whole history)",
            f"{measured[turn][0]} / {measured[turn][1]} ({full_history_tokens(turn)} / {turn})",
        )
        for turn in sizes.turns
    ]
    growth = measured[last][0] / measured[2][0]
    rows.append(
        Row(
            NAME,
            f"turn {last} / turn 2 input tokens",
            f"{growth:.2f}x",
            f"<= {GROWTH_TARGET:g}x",
            judged(growth <= GROWTH_TARGET, smoke=sizes.smoke),
        )
    )
    return rows
