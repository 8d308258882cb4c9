"""The terminal adapter: `python -m bot imagine PROMPT ...`, one turn per call."""

from __future__ import annotations

import argparse
import logging
import re
import secrets
import sys
import tempfile
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, Protocol

from bot.engine import MAX_COUNT, Engine
from bot.errors import BadArgument, BotError, NotAnImage
from bot.models import Attachment, Image, Reply, Request, Source, ThreadKey
from bot.upstream import BUILTIN, SIZES, WIDE_RATIOS, ModelCapabilities

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


def _models_that(can: Callable[[ModelCapabilities], bool]) -> str:
    """The built-in current models that can do something, for the help text."""
    return ", ".join(name for name in BUILTIN.current() if can(BUILTIN.get(name)))


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
        "--aspect", "--ar", choices=WIDE_RATIOS, metavar="RATIO", dest="aspect",
        help=f"aspect ratio, one of {', '.join(WIDE_RATIOS)} (1:4, 4:1, 1:8, 8:1: "
        f"{_models_that(lambda caps: '8:1' in caps.ratios)})",
    )  # fmt: skip
    imagine.add_argument(
        "--model", help="model id (default: IMAGE_MODEL); see docs/models.md for what each can do"
    )
    imagine.add_argument(
        "--size", type=str.upper, choices=SIZES, metavar="SIZE",
        help=f"output size, one of {', '.join(SIZES)} (default: the model's; 4K: "
        f"{_models_that(lambda caps: '4K' in caps.image_sizes)}; 512: "
        f"{_models_that(lambda caps: '512' in caps.image_sizes)})",
    )  # fmt: skip
    imagine.add_argument(
        "-n", "--n", "--count", type=int, choices=range(1, MAX_COUNT + 1), default=1,
        metavar="N", dest="count",
        help=f"how many images (variations), 1-{MAX_COUNT}; each is written to its own file",
    )  # fmt: skip
    imagine.add_argument(
        "--search", action="store_true",
        help="ground the image on Google Search "
        f"({_models_that(lambda caps: caps.grounding)}); the sources are printed after the text",
    )  # fmt: skip
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
    size: str | None = None
    count: int = 1
    search: bool = False

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> ImagineArgs:
        return cls(
            prompt=args.prompt,
            images=tuple(args.image),
            aspect=args.aspect,
            model=args.model,
            thread=args.thread,
            output=args.output,
            size=args.size,
            count=args.count,
            search=args.search,
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
    """Default out/<thread>-<turn number>.<ext>, each variation under its own turn number;
    with OUT: OUT for the first image, OUT-2, OUT-3 for more."""
    paths: list[Path] = []
    for index, (turn, image) in enumerate(reply.branches, 1):
        if output is not None:
            suffix = f"-{index}" if index > 1 else ""
            paths.append(output.with_name(f"{output.stem}{suffix}{output.suffix}"))
            continue
        path = Path("out") / f"{thread}-{turn.number}.{image.extension}"
        if path in paths:  # several images of one turn (an upstream that answered more)
            path = path.with_name(f"{thread}-{turn.number}-{index}.{image.extension}")
        paths.append(path)
    return paths


def sources_lines(sources: Sequence[Source]) -> list[str]:
    """The pages a grounded answer drew on, one a line: `Sources:` then `- title <uri>`."""
    if not sources:
        return []
    lines = ["Sources:"]
    for source in sources:
        uri = _printable(source.uri)
        lines.append(f"- {_printable(source.title) or uri} <{uri}>")
    return lines


def _write(paths: Sequence[Path], images: Sequence[Image]) -> None:
    for path, image in zip(paths, images, strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(image.data)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _printable(text: str) -> str:
    """One line without control characters: a web page's title may carry terminal escapes."""
    return _one_line("".join(char for char in text if unicodedata.category(char)[0] != "C"))


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
        for index, (_, image) in enumerate(reply.branches, 1)
    ]
    _write(paths, [image for _, image in reply.branches])
    return paths


async def run_imagine(engine: Engine, args: ImagineArgs) -> int:
    """One turn; prints the path(s) and the model's text; returns the exit code."""
    thread = args.thread or datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)
    written: list[Path] = []

    async def deliver(reply: Reply) -> None:
        paths = output_paths(reply, thread=thread, output=args.output)
        try:
            _write(paths, [image for _, image in reply.branches])
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
            size=args.size,
            count=args.count,
            search=args.search,
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
    for line in sources_lines(reply.sources):
        print(line)
    return EXIT_OK
