"""Signed, expiring links to a result's exact bytes, fetched over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from bot.config import load_settings
from bot.models import Image, ThreadKey
from bot.ops import FileRoute, Health, Links, Metrics, WebServer, link_key, links_from
from storage.memory import MemoryStore
from tests.ops.raw import FakeClock, answers, port_of, started
from tests.support.service import until

API_KEY = "sk-test-the-api-key-itself"
LINK_SECRET = "the-operators-link-secret"
PUBLIC = "https://bot.example.com"
MiB = 1024 * 1024


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


class WallClock(FakeClock):
    """Unix time that moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0


async def fetch(port: int, target: str, *, method: str = "GET") -> Answer:
    """One request on a new connection, read until the server closes it."""
    async with asyncio.timeout(20):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            head = f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            writer.write(head.encode())
            raw = await reader.read(-1)
        finally:
            writer.close()
    top, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = top.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return Answer(int(status_line.split(" ")[1]), {k.lower(): v for k, v in headers.items()}, body)


def target(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def stored(store: MemoryStore, *images: Image) -> None:
    """The images kept in the store the way a turn keeps them."""
    thread = await store.create_thread(ThreadKey("slack", "T1", "C1", os.urandom(4).hex()))
    await store.start_turn(
        thread.id,
        parent_id=None,
        user="U1",
        prompt="a prompt",
        ratio=None,
        model="gemini-3-pro-image",
        inputs=list(images),
        owner="test",
        lease=60,
    )


def big_png(size: int) -> Image:
    # Only the signature matters to the route: it serves bytes, it does not decode them.
    return Image(b"\x89PNG\r\n\x1a\n" + os.urandom(size - 8), "image/png")


@asynccontextmanager
async def serving(
    *images: Image, clock: WallClock | None = None, **route: float
) -> AsyncIterator[tuple[Links, int, WebServer]]:
    store = MemoryStore()
    await store.open()
    await stored(store, *images)
    links = Links(
        public_url=PUBLIC + "/",
        key=link_key(None, SecretStr(API_KEY)),
        ttl_seconds=72 * 3600,
        clock=clock or WallClock(),
    )
    files = FileRoute(links, store, **route)  # type: ignore[arg-type]
    async with started(mount=files.mount) as server:
        yield links, port_of(server), server
    await store.close()


async def test_a_20_mb_result_arrives_byte_for_byte_with_its_headers() -> None:
    image = big_png(20 * MiB)
    async with serving(image) as (links, port, _):
        url = links.url_for(image.sha256, mime="image/png")
        answer = await fetch(port, target(url))
        head = await fetch(port, target(url), method="HEAD")
    assert re.fullmatch(
        rf"{PUBLIC}/files/{image.sha256}\.png\?expires=1800259200&sig=[0-9a-f]{{64}}", url
    )
    assert answer.status == 200
    assert hashlib.sha256(answer.body).hexdigest() == image.sha256
    assert answer.headers["content-type"] == "image/png"
    assert answer.headers["content-length"] == str(20 * MiB)
    assert answer.headers["content-disposition"] == f'inline; filename="{image.sha256}.png"'
    assert answer.headers["cache-control"] == f"private, max-age={72 * 3600}"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert head.status == 200 and head.body == b""
    assert head.headers["content-length"] == str(20 * MiB)
    assert head.headers["content-type"] == "image/png"


async def test_forged_altered_and_expired_links_are_refused_in_a_sentence() -> None:
    image, other = big_png(1000), big_png(2000)
    clock = WallClock()
    async with serving(image, other, clock=clock) as (links, port, _):
        good = target(links.url_for(image.sha256, mime="image/png"))
        path, query = good.split("?")
        expires, sig = (part.split("=")[1] for part in query.split("&"))
        flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
        refused = [
            f"{path}?expires={expires}&sig={flipped}",  # forged signature
            f"/files/{other.sha256}.png?{query}",  # another image under this signature
            f"{path.removesuffix('.png')}.jpg?{query}",  # another extension
            f"{path}?expires={int(expires) + 3600}&sig={sig}",  # a later expiry
            f"{path}?expires={expires}",  # no signature
            f"{path}?expires={expires}&sig={sig}&sig={sig}",  # two of them
            f"{path}?expires={expires}&sig={sig.upper()}",
            f"{path}?expires=-1&sig={sig}",
        ]
        answers_ = [await fetch(port, attempt) for attempt in refused]
        assert (await fetch(port, good)).status == 200
        clock.now += 72 * 3600
        expired = await fetch(port, good)
    for attempt, answer in zip(refused, answers_, strict=True):
        assert answer.status == 403, attempt
        assert answer.text.startswith("This link is not valid"), attempt
        assert answer.headers["content-type"].startswith("text/plain")
    assert expired.status == 403
    assert expired.text.startswith("This link has expired.")


async def test_an_image_no_longer_stored_is_not_found() -> None:
    async with serving(big_png(1000)) as (links, port, _):
        gone = hashlib.sha256(b"never stored").hexdigest()
        answer = await fetch(port, target(links.url_for(gone, mime="image/png")))
    assert answer.status == 404
    assert answer.text == "This image is not kept here any more."


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
async def test_only_get_and_head_are_served(method: str) -> None:
    image = big_png(1000)
    async with serving(image) as (links, port, _):
        answer = await fetch(
            port, target(links.url_for(image.sha256, mime="image/png")), method=method
        )
    assert answer.status == 405
    assert image.data not in answer.body


async def test_paths_outside_a_signed_name_reach_nothing_of_the_store() -> None:
    image = big_png(1000)
    async with serving(image) as (links, port, _):
        query = target(links.url_for(image.sha256, mime="image/png")).split("?")[1]
        attempts = [
            f"/files/../../data/bot.db?{query}",
            f"/files/..%2f..%2fdata%2fbot.db?{query}",
            f"/files/%2e%2e/%2e%2e/etc/passwd?{query}",
            f"/files/{image.sha256}.png/../../etc/passwd?{query}",
            f"/files/{image.sha256}.png%00.txt?{query}",
            f"/files/{image.sha256}.png/?{query}",
            f"/files//etc/passwd?{query}",
            f"/files/?{query}",
            f"/files?{query}",
        ]
        answers_ = [await fetch(port, attempt) for attempt in attempts]
    for attempt, answer in zip(attempts, answers_, strict=True):
        assert answer.status in (403, 404), (attempt, answer.status)
        assert image.data not in answer.body


async def test_no_secret_or_signature_reaches_a_response_or_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    image = big_png(300_000)
    caplog.set_level(logging.DEBUG)
    async with serving(image) as (links, port, _):
        url = links.url_for(image.sha256, mime="image/png")
        sig = url.rsplit("=", 1)[1]
        bodies = [
            await fetch(port, target(url)),
            await fetch(port, target(url.replace(sig, "0" * 64))),
            await fetch(port, target(links.url_for("0" * 64, mime="image/png"))),
        ]
    key = link_key(None, SecretStr(API_KEY))
    secrets = [API_KEY.encode(), key, key.hex().encode(), sig.encode()]
    logged = caplog.text.encode() + repr(links).encode()
    for secret in secrets:
        assert secret not in logged
        for answer in bodies:
            assert secret not in answer.body.replace(image.data, b"")
            assert secret not in repr(answer.headers).encode()
    assert "served" in caplog.text  # the log was on, and said something


async def test_a_client_that_stops_reading_is_dropped_and_frees_its_download_slot() -> None:
    image = big_png(20 * MiB)
    async with serving(image, send_timeout=0.5, max_downloads=1) as (links, port, server):
        url = target(links.url_for(image.sha256, mime="image/png"))
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {url} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await until(lambda: server.guard.open == 1)
        busy = await fetch(port, url)  # the one slot is held by the client that does not read
        await until(lambda: server.guard.open == 0, within=10)
        writer.close()
        again = await fetch(port, url)
    assert busy.status == 503 and busy.headers["retry-after"] == "5"
    assert again.status == 200 and hashlib.sha256(again.body).hexdigest() == image.sha256


def test_the_key_is_derived_never_the_secret_itself_and_the_same_on_every_replica() -> None:
    from_api = link_key(None, SecretStr(API_KEY))
    assert from_api == link_key(None, SecretStr(API_KEY))
    assert API_KEY.encode() not in from_api and len(from_api) == 32
    assert link_key(SecretStr(LINK_SECRET), SecretStr(API_KEY)) == link_key(
        SecretStr(LINK_SECRET), None
    )
    assert link_key(SecretStr(LINK_SECRET), SecretStr(API_KEY)) != from_api
    one, two = (Links(public_url=PUBLIC, key=from_api, ttl_seconds=60) for _ in range(2))
    url = one.url_for("a" * 64, mime="image/webp")
    name, query = (
        urlsplit(url).path.rsplit("/", 1)[1],
        dict(part.split("=") for part in urlsplit(url).query.split("&")),
    )
    assert name == "a" * 64 + ".webp"
    assert two.check(name, expires=query["expires"], sig=query["sig"]).verdict.value == "valid"


def test_links_exist_only_with_a_public_url_and_the_server_hands_them_on() -> None:
    assert links_from(load_settings(gptproto_api_key=API_KEY)) is None
    links = links_from(load_settings(gptproto_api_key=API_KEY, public_url=PUBLIC, link_ttl_hours=2))
    assert links is not None and links.ttl_seconds == 7200
    assert links.url_for("b" * 64, mime="image/jpeg").startswith(f"{PUBLIC}/files/{'b' * 64}.jpg?")
    server = WebServer(
        health=Health(answers), metrics=Metrics(CollectorRegistry()), host="127.0.0.1", port=0
    )
    assert server.links is None
    server.serve_files(FileRoute(links, MemoryStore()))
    assert server.links is links
    assert "GET /files/{name}" in server.routes()
