"""`python -m bot imagine` as a subprocess against the upstream fake: outputs and exit codes."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image as PILImage

from tests.fakes.gptproto import FakeGptProto, Outcome

ROOT = Path(__file__).resolve().parents[3]
API_KEY = "sk-cli-test-secret"


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


def _environment(fake: FakeGptProto, tmp_path: Path, extra: dict[str, str]) -> dict[str, str]:
    keep = {"PATH", "HOME", "LANG", "SYSTEMROOT", "TMPDIR"}
    env = {name: value for name, value in os.environ.items() if name in keep}
    env |= {
        "PYTHONPATH": str(ROOT),
        "GPTPROTO_API_KEY": API_KEY,
        "GPTPROTO_BASE_URL": fake.url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'state' / 'bot.db'}",
        "UPSTREAM_MAX_ATTEMPTS": "1",
    }
    return {name: value for name, value in (env | extra).items() if value}


async def imagine(
    fake: FakeGptProto, tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> Run:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "imagine", *args,
        cwd=tmp_path, env=_environment(fake, tmp_path, env or {}),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(60):
        stdout, stderr = await process.communicate()
    run = Run(process.returncode or 0, stdout.decode(), stderr.decode())
    assert "Traceback" not in run.stderr
    assert API_KEY not in run.stdout + run.stderr
    return run


def _one_error_line(run: Run) -> str:
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    return lines[0]


def _png(tmp_path: Path, name: str, colour: tuple[int, int, int] = (0, 90, 200)) -> Path:
    path = tmp_path / name
    PILImage.new("RGB", (80, 60), colour).save(path, "PNG")
    return path


async def test_writes_the_image_at_the_asked_ratio(fake: FakeGptProto, tmp_path: Path) -> None:
    fake.queue(Outcome.image("Here is your fox."))
    run = await imagine(fake, tmp_path, "a red fox", "--aspect", "16:9", "-o", "fox.png")
    assert run.code == 0, run.stderr
    written = (tmp_path / "fox.png").read_bytes()
    assert written == fake.generations[0].produced[0]
    picture = PILImage.open(io.BytesIO(written))
    assert (picture.format, picture.size) == ("PNG", (1344, 768))
    assert run.stdout.splitlines() == ["fox.png", "Here is your fox."]


async def test_a_named_thread_refines_across_invocations(
    fake: FakeGptProto, tmp_path: Path
) -> None:
    first = await imagine(fake, tmp_path, "a lighthouse", "--thread", "coast")
    second = await imagine(fake, tmp_path, "make it night", "--thread", "coast")
    assert (first.code, second.code) == (0, 0)
    assert first.stdout.split() == [str(Path("out/coast-1.png"))]
    assert second.stdout.split() == [str(Path("out/coast-2.png"))]
    made_first = (tmp_path / "out" / "coast-1.png").read_bytes()
    assert fake.generations[1].input_images() == [made_first]


async def test_jpeg_output_keeps_its_real_extension(fake: FakeGptProto, tmp_path: Path) -> None:
    fake.queue(Outcome.image(mime="image/jpeg"))
    run = await imagine(fake, tmp_path, "a photo of a pier", "--thread", "pier")
    assert run.code == 0
    path = tmp_path / "out" / "pier-1.jpg"
    assert run.stdout.strip() == str(Path("out/pier-1.jpg"))
    assert path.read_bytes() == fake.generations[0].produced[0]


async def test_input_images_are_sent(fake: FakeGptProto, tmp_path: Path) -> None:
    one, two = _png(tmp_path, "one.png"), _png(tmp_path, "two.png", (250, 250, 0))
    run = await imagine(fake, tmp_path, "combine", "-i", str(one), "-i", str(two), "-o", "x.png")
    assert run.code == 0
    assert fake.generations[0].input_images() == [one.read_bytes(), two.read_bytes()]


@pytest.mark.parametrize(
    ("case", "said"),
    [
        ("pdf", "not an image"),
        ("missing", "No such file"),
        ("four", "at most 3"),
        ("ratio", "invalid choice"),
        ("empty", "prompt is empty"),
        ("invisible", "prompt is empty"),
        ("thread", "--thread"),
        ("directory", "that is a directory"),
    ],
)
async def test_bad_usage_or_input_exits_2(
    fake: FakeGptProto, tmp_path: Path, case: str, said: str
) -> None:
    pdf = tmp_path / "scan.png"
    pdf.write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n")
    photo = _png(tmp_path, "p.png")
    args = {
        "pdf": ["edit this", "-i", str(pdf)],
        "missing": ["edit this", "-i", str(tmp_path / "nowhere.png")],
        "four": ["edit", *[arg for _ in range(4) for arg in ("-i", str(photo))]],
        "ratio": ["wide", "--aspect", "7:3"],
        "empty": ["  "],
        "invisible": ["\u200b\u200b"],
        "thread": ["a fox", "--thread", "../../escape"],
        "directory": ["a fox", "-o", str(tmp_path)],
    }[case]
    run = await imagine(fake, tmp_path, *args)
    assert run.code == 2
    assert said in _one_error_line(run)
    assert fake.generations == []


@pytest.mark.parametrize(
    ("outcome", "said"),
    [
        (Outcome.invalid_signature(), "refused the bot's API key"),
        (Outcome.insufficient_balance(), "run out of balance"),
        (Outcome.model_not_found("gemini-9-image"), "gemini-9-image"),
    ],
)
async def test_account_problems_exit_3(
    fake: FakeGptProto, tmp_path: Path, outcome: Outcome, said: str
) -> None:
    fake.queue(outcome)
    run = await imagine(fake, tmp_path, "a fox", "--model", "gemini-9-image")
    assert run.code == 3
    assert said in _one_error_line(run)


async def test_missing_key_and_retired_model_exit_3(fake: FakeGptProto, tmp_path: Path) -> None:
    missing = await imagine(fake, tmp_path, "a fox", env={"GPTPROTO_API_KEY": ""})
    retired = await imagine(fake, tmp_path, "a fox", "--model", "gemini-2.5-flash-image-preview")
    assert (missing.code, retired.code) == (3, 3)
    assert "GPTPROTO_API_KEY" in _one_error_line(missing)
    assert "use 'gemini-3.1-flash-image'" in _one_error_line(retired)
    assert fake.generations == []


@pytest.mark.parametrize(
    ("outcome", "said"),
    [
        (Outcome.prompt_blocked("PROHIBITED_CONTENT"), "PROHIBITED_CONTENT"),
        (Outcome.output_blocked("IMAGE_SAFETY"), "IMAGE_SAFETY"),
        (Outcome.unsafe_content(), "unsafe content"),
        (Outcome.finish("NO_IMAGE"), "NO_IMAGE"),
        (Outcome.text_only("Which fox do you mean?"), "Which fox do you mean?"),
    ],
)
async def test_declined_or_no_image_exits_4_with_the_reason(
    fake: FakeGptProto, tmp_path: Path, outcome: Outcome, said: str
) -> None:
    fake.queue(outcome)
    run = await imagine(fake, tmp_path, "a fox", "-o", "fox.png")
    assert run.code == 4
    assert said in _one_error_line(run)
    assert not (tmp_path / "fox.png").exists()


@pytest.mark.parametrize(
    ("outcome", "env", "said"),
    [
        (Outcome.overloaded(), {}, "unavailable right now"),
        (Outcome.html(), {}, "web page instead of an answer"),
        (Outcome.empty(), {}, "empty answer"),
        (Outcome.slow(5.0), {"UPSTREAM_TIMEOUT": "0.3"}, "too long"),
    ],
)
async def test_upstream_trouble_exits_5(
    fake: FakeGptProto, tmp_path: Path, outcome: Outcome, env: dict[str, str], said: str
) -> None:
    fake.queue(outcome)
    run = await imagine(fake, tmp_path, "a fox", env=env)
    assert run.code == 5
    assert said in _one_error_line(run)


async def test_an_image_that_cannot_be_written_is_saved_elsewhere_and_said_where(
    fake: FakeGptProto, tmp_path: Path
) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("a file where a folder should be")
    rescue = tmp_path / "rescue"
    rescue.mkdir()
    run = await imagine(
        fake, tmp_path, "a fox", "--thread", "foxes", "-o", str(blocker / "fox.png"),
        env={"TMPDIR": str(rescue)},
    )  # fmt: skip
    assert run.code == 2
    line = _one_error_line(run)
    [saved] = list(rescue.iterdir())
    assert "cannot write the image" in line and str(saved) in line
    assert saved.read_bytes() == fake.generations[0].produced[0]  # the paid-for image, whole
    # It was not delivered where asked, so the thread's next turn does not continue from it.
    again = await imagine(fake, tmp_path, "make it night", "--thread", "foxes", "-o", "n.png")
    assert again.code == 0
    assert fake.generations[1].input_images() == []
