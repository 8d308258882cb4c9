"""`python -m bot imagine` with --model, --size, --n, --search and --ar, against each model's
limits on the upstream fake: what is written, what is printed, the exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.adapters.answers import gemini_answer, image_part
from tests.adapters.cli.test_imagine import _one_error_line, _png, imagine
from tests.fakes.gptproto import FakeGptProto
from tests.fakes.gptproto_images import make_image

FLASH = "gemini-3.1-flash-image"
LITE = "gemini-3.1-flash-lite-image"
PRO = "gemini-3-pro-image"
OLD = "gemini-2.5-flash-image"


def config(request: Any) -> dict[str, Any]:
    found: dict[str, Any] = request.json["generationConfig"]
    return found


async def test_help_lists_every_option(fake: FakeGptProto, tmp_path: Path) -> None:
    run = await imagine(fake, tmp_path, "--help")
    assert run.code == 0
    for option in ("-i", "--aspect", "--ar", "--model", "--size", "--n", "--count",
                   "--search", "--thread", "-o"):  # fmt: skip
        assert f"{option} " in run.stdout or f"{option}," in run.stdout, option
    assert "8:1" in run.stdout and "4K" in run.stdout


async def test_four_variations_on_3_1_flash_are_four_calls_and_four_files(
    fake: FakeGptProto, tmp_path: Path
) -> None:
    run = await imagine(fake, tmp_path, "a fox", "--model", FLASH, "--n", "4", "--thread", "t")
    assert run.code == 0, run.stderr
    assert len(fake.generations) == 4
    printed = run.stdout.split()
    assert sorted(printed) == [str(Path(f"out/t-{n}.png")) for n in (1, 2, 3, 4)]
    written = sorted((tmp_path / path).read_bytes() for path in printed)
    assert written == sorted(request.produced[0] for request in fake.generations)


async def test_four_variations_on_2_5_flash_are_one_call_with_four_candidates(
    fake: FakeGptProto, tmp_path: Path
) -> None:
    run = await imagine(fake, tmp_path, "a fox", "--model", OLD, "--count", "4", "-o", "fox.png")
    assert run.code == 0, run.stderr
    [request] = fake.generations
    assert config(request).get("candidateCount") == 4
    assert run.stdout.split() == ["fox.png", "fox-2.png", "fox-3.png", "fox-4.png"]


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (["--model", LITE, "--size", "4K"], f"{LITE} cannot make 4K images; it makes only 1K"),
        (["--model", OLD, "--size", "2k"], f"{OLD} cannot make 2K images"),
        (["--model", OLD, "--search"], f"{OLD} cannot search the web"),
        (["--model", LITE, "--search"], f"{LITE} cannot search the web"),
        (["--model", PRO, "--ar", "1:8"], f"Unknown aspect ratio '1:8' for {PRO}"),
        (["--model", OLD, "--aspect", "4:1"], f"Unknown aspect ratio '4:1' for {OLD}"),
        (["--n", "5"], "invalid choice"),
        (["--size", "8K"], "invalid choice"),
        (["--ar", "7:3"], "invalid choice"),
    ],
)
async def test_an_option_the_model_cannot_do_exits_2_before_any_call(
    fake: FakeGptProto, tmp_path: Path, args: list[str], sentence: str
) -> None:
    run = await imagine(fake, tmp_path, "a fox", *args)
    assert run.code == 2
    assert sentence in _one_error_line(run)
    assert fake.generations == []


@pytest.mark.parametrize(
    ("model", "args", "image_config"),
    [
        (FLASH, ["--size", "512", "--ar", "8:1"], {"imageSize": "512", "aspectRatio": "8:1"}),
        (PRO, ["--size", "4K"], {"imageSize": "4K"}),
        (LITE, ["--ar", "1:4"], {"aspectRatio": "1:4"}),
        (OLD, ["--aspect", "21:9"], {"aspectRatio": "21:9"}),
    ],
)
async def test_the_options_reach_the_upstream(
    fake: FakeGptProto, tmp_path: Path, model: str, args: list[str], image_config: dict[str, str]
) -> None:
    run = await imagine(fake, tmp_path, "a fox", "--model", model, *args, "-o", "fox.png")
    assert run.code == 0, run.stderr
    [request] = fake.generations
    assert config(request).get("imageConfig") == image_config


async def test_fourteen_references_for_3_1_flash_fifteen_refused(
    fake: FakeGptProto, tmp_path: Path
) -> None:
    photos = [_png(tmp_path, f"p{n}.png", (n * 15, 40, 90)) for n in range(15)]
    many = [arg for photo in photos[:14] for arg in ("-i", str(photo))]
    run = await imagine(fake, tmp_path, "compose", "--model", FLASH, *many, "-o", "c.png")
    assert run.code == 0, run.stderr
    [request] = fake.generations
    assert request.input_images() == [photo.read_bytes() for photo in photos[:14]]

    over = [*many, "-i", str(photos[14])]
    refused = await imagine(fake, tmp_path, "compose", "--model", FLASH, *over)
    assert refused.code == 2
    assert "at most 14" in _one_error_line(refused)
    assert len(fake.generations) == 1


async def test_drafts_are_not_written_only_the_final_image_is(
    fake: FakeGptProto, tmp_path: Path
) -> None:
    drafts = [make_image(801, (256, 256)), make_image(802, (512, 512))]
    final = make_image(803, (1024, 1024))
    parts = [image_part(draft, f"sig-{n}") for n, draft in enumerate(drafts)]
    parts += [{"text": "The final harbour."}, image_part(final, "sig-final")]
    fake.queue(gemini_answer(parts))
    run = await imagine(fake, tmp_path, "a harbour", "--model", FLASH, "--thread", "h")
    assert run.code == 0, run.stderr
    assert run.stdout.splitlines() == [str(Path("out/h-1.png")), "The final harbour."]
    assert (tmp_path / "out" / "h-1.png").read_bytes() == final


async def test_sources_are_printed_after_the_text(fake: FakeGptProto, tmp_path: Path) -> None:
    image = make_image(804, (1024, 1024))
    grounding = {
        "groundingChunks": [
            {"web": {"uri": "https://weather.example/lisbon", "title": "Lisbon \x1b[31mweather"}},
            {"web": {"uri": "https://news.example/today", "title": "Today"}},
        ]
    }
    parts = [{"text": "Sunny, 24 °C."}, image_part(image, "sig-1")]
    fake.queue(gemini_answer(parts, groundingMetadata=grounding))
    run = await imagine(
        fake, tmp_path, "weather poster", "--model", FLASH, "--search", "-o", "w.png"
    )
    assert run.code == 0, run.stderr
    assert run.stdout.splitlines() == [
        "w.png",
        "Sunny, 24 °C.",
        "Sources:",
        "- Lisbon [31mweather <https://weather.example/lisbon>",
        "- Today <https://news.example/today>",
    ]
    tools = fake.generations[0].json.get("tools") or []
    assert any("google_search" in tool or "googleSearch" in tool for tool in tools), tools
