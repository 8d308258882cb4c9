"""The terminal adapter: `python -m bot imagine PROMPT ...`, one turn per call."""

from __future__ import annotations

import argparse
import logging
import re
import secrets
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, Protocol

from bot.engine import Engine
from bot.errors import BadArgument, BotError, NotAnImage
from bot.models import Attachment, Image, Reply, Request, ThreadKey
from bot.upstream import RATIOS

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_USAGE = 2
THREAD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see --help)\n")


class Subcommands(Protocol):
    """What `ArgumentParser.add_subparsers()` returns, as far as `imagine` needs it."""

    def add_parser(self, name: str, **options: Any) -> argparse.ArgumentParser: ...


def add_imagine_parser(commands: Subcommands) -> None:
    """Register `imagine` and its options on the main command line."""
    imagine = commands.add_parser(
        "imagine",
        help="make or refine one image from the terminal",
        description="Make an image from a prompt, edit attached images, or refine a named thread.",
    )
    imagine.add_argument("prompt", help="what to draw, or what to change")
    imagine.add_argument(
        "-i", "--image", action="append", default=[], type=Path, metavar="IMAGE",
        help="an input image (repeat for several, up to the model's limit)",
    )  # fmt: skip
    imagine.add_argument(
        "--aspect", choices=RATIOS, metavar="RATIO", help="aspect ratio, e.g. 16:9"
    )
    imagine.add_argument("--model", help="model name (default: IMAGE_MODEL)")
    imagine.add_argument(
        "--thread", metavar="NAME", help="continue (or start) a named thread: refines its image"
    )
    imagine.add_argument(
        "-o", "--output", type=Path, metavar="OUT", help="where to write the image"
    )


def make_parser() -> argparse.ArgumentParser:
    return _Parser(prog="python -m bot")


@dataclass(frozen=True)
class ImagineArgs:
    prompt: str
    images: tuple[Path, ...]
    aspect: str | None
    model: str | None
    thread: str | None
    output: Path | None

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> ImagineArgs:
        return cls(
            prompt=args.prompt,
            images=tuple(args.image),
            aspect=args.aspect,
            model=args.model,
            thread=args.thread,
            output=args.output,
        )


def _read(paths: Sequence[Path]) -> tuple[Attachment, ...]:
    attachments = []
    for path in paths:
        try:
            attachments.append(Attachment(data=path.read_bytes(), name=path.name))
        except OSError as exc:
            raise NotAnImage(str(path), exc.strerror or "cannot be read") from None
    return tuple(attachments)


def output_paths(reply: Reply, *, thread: str, output: Path | None) -> list[Path]:
    """OUT for the first image, OUT-2, OUT-3 for more; default out/<thread>-<turn>.<ext>."""
    paths = []
    for index, image in enumerate(reply.images, 1):
        if output is None:
            suffix = f"-{index}" if index > 1 else ""
            paths.append(Path("out") / f"{thread}-{reply.turn_number}{suffix}.{image.extension}")
        elif index == 1:
            paths.append(output)
        else:
            paths.append(output.with_name(f"{output.stem}-{index}{output.suffix}"))
    return paths


def _write(paths: Sequence[Path], images: Sequence[Image]) -> None:
    for path, image in zip(paths, images, strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(image.data)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def check_arguments(args: ImagineArgs) -> None:
    """Refuse, before anything is made and paid for, a thread name or OUT that cannot work."""
    if args.thread is not None and not THREAD_NAME.fullmatch(args.thread):
        raise BadArgument(
            f"--thread {args.thread!r}: use 1-64 letters, digits, '.', '_' or '-' "
            "(the name becomes part of the output file's name)."
        )
    if args.output is not None and args.output.is_dir():
        raise BadArgument(f"-o {args.output}: that is a directory; give a file name.")


def _rescue(reply: Reply, thread: str) -> list[Path]:
    """Where the images go when OUT cannot be written, so a paid-for image is never lost."""
    folder = Path(tempfile.gettempdir())
    paths = [
        folder / f"banana-{thread}-{reply.turn_number}-{index}.{image.extension}"
        for index, image in enumerate(reply.images, 1)
    ]
    _write(paths, reply.images)
    return paths


async def run_imagine(engine: Engine, args: ImagineArgs) -> int:
    """One turn; prints the path(s) and the model's text; returns the exit code."""
    thread = args.thread or datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)
    written: list[Path] = []

    async def deliver(reply: Reply) -> None:
        paths = output_paths(reply, thread=thread, output=args.output)
        try:
            _write(paths, reply.images)
        except OSError as exc:
            rescued = _rescue(reply, thread)
            raise BadArgument(
                f"cannot write the image to {paths[0]} ({exc.strerror}); "
                f"it was saved as {', '.join(map(str, rescued))} instead"
            ) from None
        written.extend(paths)

    try:
        check_arguments(args)
        request = Request(
            key=ThreadKey("cli", "local", "cli", thread),
            user="local",
            text=args.prompt,
            attachments=_read(args.images),
            ratio=args.aspect,
            model=args.model,
        )
        call = engine.refine if args.thread else engine.imagine
        reply = await call(request, deliver=deliver)
    except BotError as exc:
        print(f"error: {_one_line(exc.user_message)}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"error: cannot write the image anywhere: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    for path in written:
        print(path)
    if reply.text:
        print(reply.text)
    return EXIT_OK
