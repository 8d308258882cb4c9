"""httpx's transport API over one aiohttp session: the same requests, read with less CPU.

httpx-aiohttp's transport was measured and not used: it reports a refused connection or a
server hanging up as httpx.ConnectTimeout, lets a malformed answer escape as aiohttp's own
ClientResponseError, and cannot tell a pool wait from a slow connect. Here every aiohttp error
becomes the httpx error httpcore raises for the same fault, so the client's retries see no
difference, and bodies arrive raw (still compressed) for reading.py to inflate in bounded steps.
"""

from __future__ import annotations

import contextlib
import ssl
import urllib.request
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import aiohttp
import httpx
from yarl import URL

# What one item of a body may hold: httpcore's own read size, so the caps in reading.py stop
# within the same distance of their limit on either transport.
CHUNK = 64 * 1024
# httpx's default: an idle connection is dropped after this, not reused stale.
KEEPALIVE = 5.0

# Headers aiohttp would add of its own when a request lacks them.
_HTTPX_SETS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")

# Most specific first: the httpx error httpcore raises for the same fault.
_ERRORS: tuple[tuple[type[Exception], type[Exception]], ...] = (
    (aiohttp.ClientProxyConnectionError, httpx.ProxyError),
    (aiohttp.ClientHttpProxyError, httpx.ProxyError),
    (aiohttp.ClientConnectorError, httpx.ConnectError),  # refused, DNS, TLS, certificate
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.RemoteProtocolError),  # cut short, bad chunking
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),  # an unparsable status or header
    (aiohttp.NonHttpUrlClientError, httpx.UnsupportedProtocol),
    (aiohttp.InvalidURL, httpx.InvalidURL),
    (aiohttp.ClientOSError, httpx.ReadError),  # reset by peer, broken pipe
    (aiohttp.ClientError, httpx.NetworkError),
    (TimeoutError, httpx.ReadTimeout),
)


@dataclass
class _Waiting:
    """Whether a request is queued for a connection: a pool wait, not a slow connect."""

    queued: bool = False


@contextlib.contextmanager
def _mapped(waiting: _Waiting | None = None) -> Iterator[None]:
    """aiohttp's errors raised as the httpx errors callers of an httpx transport expect."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:
        # aiohttp's `connect` timeout covers both the wait for a free connection and the
        # connect itself; only the trace knows which one ran out.
        error = (
            httpx.PoolTimeout if waiting is not None and waiting.queued else httpx.ConnectTimeout
        )
        raise error(str(exc) or "connect timed out") from exc
    except Exception as exc:
        for source, target in _ERRORS:
            if isinstance(exc, source):
                raise target(str(exc) or type(exc).__name__) from exc
        raise


async def _queued(_: aiohttp.ClientSession, context: SimpleNamespace, __: object) -> None:
    context.trace_request_ctx.queued = True


async def _dequeued(_: aiohttp.ClientSession, context: SimpleNamespace, __: object) -> None:
    context.trace_request_ctx.queued = False


class _Body(httpx.AsyncByteStream):
    """A response body as aiohttp receives it: raw, in items of at most CHUNK bytes."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped():
            async for chunk in self._response.content.iter_chunked(CHUNK):
                yield chunk

    async def aclose(self) -> None:
        # A body not read to its end closes the connection rather than returning it.
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Requests sent through one aiohttp session and connection pool, opened on first use."""

    def __init__(self, *, max_connections: int, ssl_context: ssl.SSLContext) -> None:
        self._max_connections = max_connections
        self._ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None
        self._proxies: Mapping[str, str] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """One request; the answer's body is streamed and must be closed by the caller."""
        session = self._session or self._open()
        waiting = _Waiting()
        with _mapped(waiting):
            response = await session.request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=list(request.headers.multi_items()),
                data=_content(request),
                allow_redirects=False,  # httpx decides; the client refuses redirects outright
                timeout=_timeouts(request.extensions.get("timeout", {})),
                proxy=self._proxy(request.url),
                server_hostname=request.extensions.get("sni_hostname"),
                trace_request_ctx=waiting,
            )
        version = response.version or aiohttp.HttpVersion11  # None only before the head
        extensions = {"http_version": f"HTTP/{version.major}.{version.minor}".encode()}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode("ascii", "replace")
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=_Body(response),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        """Close the session and its connections; the next request opens a new one."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _open(self) -> aiohttp.ClientSession:
        tracing = aiohttp.TraceConfig()
        tracing.on_connection_queued_start.append(_queued)
        tracing.on_connection_queued_end.append(_dequeued)
        connector = aiohttp.TCPConnector(
            limit=self._max_connections, ssl=self._ssl, keepalive_timeout=KEEPALIVE
        )
        # Read once, as httpx reads them when a client is built. aiohttp's own trust_env is
        # not used: it would also look up ~/.netrc in a thread on every request.
        self._proxies = urllib.request.getproxies()
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,  # reading.py inflates, in bounded steps
            cookie_jar=aiohttp.DummyCookieJar(),  # httpx keeps the cookies
            skip_auto_headers=_HTTPX_SETS,  # what goes out is what httpx built, no more
            trace_configs=[tracing],
            timeout=aiohttp.ClientTimeout(),
        )
        return self._session

    def _proxy(self, url: httpx.URL) -> str | None:
        """The proxy HTTP_PROXY, HTTPS_PROXY or ALL_PROXY names for url, unless NO_PROXY."""
        proxy = self._proxies.get(url.scheme) or self._proxies.get("all")
        # Only asked when a proxy is set: it reads NO_PROXY (or the system's list) each time.
        if not proxy or urllib.request.proxy_bypass(url.host):
            return None
        return proxy if "://" in proxy else f"http://{proxy}"


def _content(request: httpx.Request) -> bytes | httpx.AsyncByteStream | None:
    try:
        return request.content or None
    except httpx.RequestNotRead:
        # A streamed body: aiohttp frames it itself, so httpx's framing header must go.
        request.headers.pop("transfer-encoding", None)
        assert isinstance(request.stream, httpx.AsyncByteStream)
        return request.stream


def _timeouts(timeout: Mapping[str, Any]) -> aiohttp.ClientTimeout:
    """httpx's four timeouts in aiohttp's terms (it has no write timeout)."""
    return aiohttp.ClientTimeout(
        total=None,
        connect=timeout.get("pool"),
        sock_connect=timeout.get("connect"),
        sock_read=timeout.get("read"),
    )
