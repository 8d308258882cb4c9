"""The wires themselves: raw bodies, httpcore's errors for every fault, a lazy pool, proxies.

Fault tests run on both wires: the aiohttp transport must raise what httpcore raises, since
that is what the client's retries were written against.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import get_args

import httpx
import pytest

from bot.errors import AuthError, ConfigError, Unavailable
from bot.upstream import Content, GenerationRequest, GptProtoClient, Part
from bot.upstream.pools import Wire
from bot.upstream.transport import CHUNK, AiohttpTransport
from tests.fakes.gptproto import FakeGptProto, Outcome, RecordedSleeps
from tests.upstream.wires import (
    PATH,
    RawServer,
    complete,
    first_request,
    full_backlog,
    head,
    refused_port,
    wire_transport,
)

KEY = "sk-transport-5b1c0e9d"
ROOT = Path(__file__).resolve().parents[2]
SHORT = httpx.Timeout(5.0, read=0.2, connect=0.2, pool=0.2)
CUT_SHORT = head("200 OK", "Content-Length: 100000") + b"x" * 1000
CHUNKED = head("200 OK", "Transfer-Encoding: chunked")
NOT_HTTP = b"NOT HTTP AT ALL\r\n\r\n"
UNAUTHORISED = head("401 Unauthorized", "Content-Type: application/json", "Content-Length: 2")
UNAUTHORISED += b"{}"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def ask() -> GenerationRequest:
    return GenerationRequest("gemini-2.5-flash-image", (Content("user", (Part(text="a fox"),)),))


@pytest.fixture
async def http(wire: Wire) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on this wire's transport alone, without the upstream client around it."""
    async with httpx.AsyncClient(transport=wire_transport(wire), timeout=SHORT) as client:
        yield client


async def read_all(http: httpx.AsyncClient, url: str) -> bytes:
    async with http.stream("POST", url, content=b"{}") as response:
        return b"".join([chunk async for chunk in response.aiter_raw()])


def test_the_transport_is_built_without_an_event_loop_or_a_session() -> None:
    # aiohttp cannot make a session or connector outside a running loop: none is made here.
    AiohttpTransport(max_connections=1, ssl_context=ssl.create_default_context())


def test_aiohttp_loads_on_first_use_not_on_import_or_construction() -> None:
    code = (
        "import sys\nfrom bot.upstream import GptProtoClient\n"
        "GptProtoClient(base_url='http://127.0.0.1:9', api_key='sk-import-check')\n"
        "print('aiohttp' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "False"


async def test_a_connection_is_kept_alive_and_closed_by_aclose() -> None:
    async with RawServer(complete()) as server:
        transport = AiohttpTransport(max_connections=4, ssl_context=ssl.create_default_context())
        async with httpx.AsyncClient(transport=transport) as http:
            for _ in range(2):
                assert (await http.post(server.url, content=b"{}")).status_code == 200
        async with asyncio.timeout(5):
            await server.hung_up.wait()  # aclose hung up the kept-alive connection
        async with httpx.AsyncClient(transport=transport) as http:  # and it opens again
            assert (await http.post(server.url, content=b"{}")).status_code == 200

        assert len(server.requests) == 3 and server.connections == 2


async def test_both_wires_send_the_same_request(fake: FakeGptProto) -> None:
    for wire in get_args(Wire):
        client = GptProtoClient(base_url=fake.url, api_key=KEY, transport=wire)
        await client.generate(ask())
        await client.aclose()

    on_aiohttp, on_httpx = fake.generations
    assert on_aiohttp.headers == on_httpx.headers
    assert (on_aiohttp.method, on_aiohttp.path, on_aiohttp.body) == (
        on_httpx.method,
        on_httpx.path,
        on_httpx.body,
    )


async def test_bodies_arrive_raw_and_still_compressed(fake: FakeGptProto, wire: Wire) -> None:
    compressed = gzip.compress(json.dumps({"candidates": [], "padding": "ab" * 100_000}).encode())
    fake.queue(Outcome.encoded(compressed, "gzip"))
    async with httpx.AsyncClient(transport=wire_transport(wire)) as http:
        raw = await read_all(http, fake.url + PATH)

    assert raw == compressed


async def test_an_endless_body_comes_in_bounded_items_and_its_connection_is_not_reused(
    fake: FakeGptProto, http: httpx.AsyncClient
) -> None:
    fake.queue(Outcome.endless(), Outcome.raw(200, b'{"after": true}'))
    async with http.stream("POST", fake.url + PATH, content=b"{}") as response:
        items = response.aiter_raw()
        sizes = [len(await anext(items)) for _ in range(20)]

    assert max(sizes) <= CHUNK
    assert await read_all(http, fake.url + PATH) == b'{"after": true}'


async def test_a_refused_connection_is_a_connect_error(http: httpx.AsyncClient) -> None:
    with pytest.raises(httpx.ConnectError):
        await http.post(f"http://127.0.0.1:{refused_port()}{PATH}", content=b"{}")


@pytest.mark.skipif(sys.platform != "linux", reason="a full accept queue stalls connects on Linux")
async def test_a_connect_that_never_completes_is_a_connect_timeout(
    http: httpx.AsyncClient,
) -> None:
    with full_backlog() as port, pytest.raises(httpx.ConnectTimeout):
        await http.post(f"http://127.0.0.1:{port}{PATH}", content=b"{}")


@pytest.mark.parametrize(
    "answer", [b"", head("200 OK", "Content-Length: 100")], ids=["no-head", "part-of-a-body"]
)
async def test_an_answer_that_stalls_is_a_read_timeout(
    http: httpx.AsyncClient, answer: bytes
) -> None:
    async with RawServer(answer, hold=True) as server:
        with pytest.raises(httpx.ReadTimeout):
            await read_all(http, server.url)


async def test_waiting_for_a_connection_is_a_pool_timeout(wire: Wire) -> None:
    async with (
        RawServer(hold=True) as server,
        httpx.AsyncClient(transport=wire_transport(wire, max_connections=1)) as http,
    ):
        first = asyncio.create_task(http.post(server.url, content=b"{}", timeout=5.0))
        try:
            await first_request(server)  # the one connection is taken and stays taken
            with pytest.raises(httpx.PoolTimeout):
                await http.post(server.url, content=b"{}", timeout=SHORT)
        finally:
            first.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await first


@pytest.mark.parametrize(
    "answer",
    [
        b"",
        CUT_SHORT,
        CHUNKED + b"10\r\n" + b"x" * 8,
        NOT_HTTP,
        CHUNKED + b"ZZZ\r\nxx\r\n",
    ],
    ids=["dropped-unanswered", "dropped-mid-body", "dropped-mid-chunk", "not-http", "bad-chunk"],
)
async def test_a_broken_answer_is_a_remote_protocol_error(
    http: httpx.AsyncClient, answer: bytes
) -> None:
    async with RawServer(answer, close=True) as server:
        with pytest.raises(httpx.RemoteProtocolError):
            await read_all(http, server.url)


@pytest.mark.parametrize("answer", [CUT_SHORT, NOT_HTTP], ids=["cut", "not-http"])
async def test_a_broken_answer_is_retried_then_unavailable(wire: Wire, answer: bytes) -> None:
    async with RawServer(answer, close=True) as server:
        client = GptProtoClient(
            base_url=f"http://127.0.0.1:{server.port}",
            api_key=KEY,
            max_attempts=2,
            sleep=RecordedSleeps(),
            transport=wire,
        )
        with pytest.raises(Unavailable):
            await client.generate(ask())
        await client.aclose()

        assert len(server.requests) == 2


async def test_a_redirect_is_not_followed_but_refused(wire: Wire) -> None:
    moved = head("302 Found", "Location: /elsewhere", "Content-Length: 0")
    async with RawServer(moved) as server:
        client = GptProtoClient(
            base_url=f"http://127.0.0.1:{server.port}", api_key=KEY, transport=wire
        )
        with pytest.raises(ConfigError) as caught:
            await client.generate(ask())
        await client.aclose()

    assert "GPTPROTO_BASE_URL" in caught.value.user_message
    assert len(server.requests) == 1


@pytest.fixture
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


async def test_http_proxy_from_the_environment_is_used(
    wire: Wire, no_proxies: pytest.MonkeyPatch
) -> None:
    async with RawServer(UNAUTHORISED) as proxy:
        no_proxies.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        client = GptProtoClient(base_url="http://upstream.invalid", api_key=KEY, transport=wire)
        with pytest.raises(AuthError):
            await client.generate(ask())
        await client.aclose()

    assert proxy.requests[0].startswith(b"POST http://upstream.invalid" + PATH.encode())


async def test_no_proxy_bypasses_the_proxy(wire: Wire, no_proxies: pytest.MonkeyPatch) -> None:
    async with RawServer(UNAUTHORISED) as proxy, RawServer(UNAUTHORISED) as upstream:
        no_proxies.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        no_proxies.setenv("NO_PROXY", "localhost,127.0.0.1")
        client = GptProtoClient(
            base_url=f"http://127.0.0.1:{upstream.port}", api_key=KEY, transport=wire
        )
        with pytest.raises(AuthError):
            await client.generate(ask())
        await client.aclose()

    assert proxy.requests == [] and upstream.requests[0].startswith(b"POST " + PATH.encode())
