"""The Slack adapter: bolt over Socket Mode or HTTP, wired to the engine."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.common import excerpt
from adapters.slack.bolt import bolt_app
from adapters.slack.buttons import SlackButtons
from adapters.slack.deferral import Deferrer
from adapters.slack.files import SlackFiles
from adapters.slack.guard import Guard
from adapters.slack.handlers import SlackHandlers
from adapters.slack.jobs import BackgroundTasks, JobRunner, Wiring
from adapters.slack.parsing import PLATFORM, place_of
from adapters.slack.replies import SlackPoster
from adapters.slack.text import literal, unescape
from bot.config import Settings
from bot.engine import Engine, InProcessQueue, JobQueue
from bot.errors import ConfigError
from bot.models import ThreadKey, Turn

logger = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
SOCKET_CONNECT_TIMEOUT = 30.0


class SlackAdapter:
    """Slack over Socket Mode when SLACK_APP_TOKEN is set, else over HTTP at POST /slack/events."""

    def __init__(
        self,
        *,
        engine: Engine,
        settings: Settings,
        web_client: AsyncWebClient | None = None,
        socket_connect_timeout: float = SOCKET_CONNECT_TIMEOUT,
        jobs: JobQueue | None = None,
    ) -> None:
        """Jobs go through `jobs` when given (a queue processes share); else they start here."""
        if settings.slack_bot_token is None:
            raise ConfigError("SLACK_BOT_TOKEN is not set, so Slack cannot be enabled.")
        token = settings.slack_bot_token.get_secret_value()
        self._app_token = settings.slack_app_token
        self._signing_secret_set = settings.slack_signing_secret is not None
        self._api_url = str(settings.slack_api_url)
        self._socket_connect_timeout = socket_connect_timeout
        self._client = web_client or AsyncWebClient(token=token, base_url=self._api_url)
        # Without a session of its own the client opens a new one (and a new connection) for
        # every call; one kept for the adapter's life saves that on each of a job's calls.
        self._owns_session = web_client is None
        self._app = bolt_app(
            self._client, settings.slack_signing_secret, socket_mode=self._app_token is not None
        )
        self._tasks = BackgroundTasks(adopt=engine.adopt)
        self._jobs = jobs or InProcessQueue(self._tasks.spawn)
        self._poster = SlackPoster(self._client, capabilities=engine.capabilities)
        self._files = SlackFiles(
            token=token,
            api_url=self._api_url,
            web=self._client,
            max_mb=settings.max_download_mb,
        )
        self._handlers = self._listen(engine)
        self._socket: AsyncSocketModeHandler | None = None
        self._identity = ""

    def _listen(self, engine: Engine) -> SlackHandlers:
        """Attach the listeners to bolt; the message handlers learn the bot's user id later."""
        wiring = Wiring(
            engine=engine,
            poster=self._poster,
            guard=Guard(engine=engine, poster=self._poster, files=self._files),
            tasks=self._tasks,
            runner=JobRunner(poster=self._poster, links=engine),
            deferrer=Deferrer(self._jobs, self._tasks.spawn),
        )
        handlers = SlackHandlers(wiring, files=self._files)
        handlers.register(self._app)
        SlackButtons(wiring).register(self._app)
        return handlers

    @property
    def socket_mode(self) -> bool:
        return self._app_token is not None

    def mount(self, app: web.Application) -> None:
        """Serve Slack's HTTP deliveries (events, commands, interactions) on the given server.

        Over Socket Mode nothing is mounted: bolt does not check signatures in that mode, so an
        HTTP route would accept unsigned deliveries.
        """
        if not self.socket_mode:
            app.router.add_post(EVENTS_PATH, self._on_http)

    async def start(self) -> None:
        """Check the token (auth.test), connect Socket Mode if configured; returns once serving."""
        if not self.socket_mode and not self._signing_secret_set:
            raise ConfigError(
                "SLACK_SIGNING_SECRET is required for Slack over HTTP "
                "(or set SLACK_APP_TOKEN to use Socket Mode)."
            )
        if self._owns_session:
            self._client.session = aiohttp.ClientSession()
        await self._files.open()
        try:
            await self._authenticate()
            if self.socket_mode:
                await self._connect_socket()
        except BaseException:
            await self._files.close()
            await self._close_session()
            raise
        logger.info("Slack adapter serving: %s", self.describe())

    async def stop(self) -> None:
        """Take no new work, let the running jobs finish, then disconnect."""
        self._tasks.closed = True
        if self._socket is not None:
            close: Callable[[], Awaitable[None]] = self._socket.close_async
            self._socket = None
            await close()
        await self._tasks.drain()
        await self._files.close()
        await self._close_session()

    async def idle(self) -> None:
        """Wait until the background work started so far has finished."""
        await self._tasks.idle()

    async def notify_failed(self, turns: Sequence[tuple[Turn, ThreadKey]]) -> None:
        """Tell the users of jobs a restart interrupted, in their threads (best effort)."""
        for turn, key in turns:
            if key.platform != PLATFORM:
                continue
            await self._poster.try_say(
                place_of(key),
                f":warning: <@{turn.user}> the bot restarted while making your image "
                f"(“{literal(excerpt(unescape(turn.prompt)))}”), so it was not finished. "
                "Please ask again.",
            )

    def describe(self) -> str:
        """One line for logs and `check`; never a secret."""
        mode = "Socket Mode" if self.socket_mode else f"HTTP at POST {EVENTS_PATH}"
        host = urlsplit(self._api_url).hostname
        return f"Slack over {mode} (Web API {host}{self._identity})"

    # -- inside -----------------------------------------------------------------------

    async def _on_http(self, request: web.Request) -> web.Response:
        if self._tasks.closed:
            # Not acked, so Slack delivers it again later, to a process that will take it.
            return web.Response(status=503, text="shutting down")
        response = await self._app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(response)

    async def _close_session(self) -> None:
        if not self._owns_session or self._client.session is None:
            return
        session, self._client.session = self._client.session, None
        await session.close()

    async def _authenticate(self) -> None:
        try:
            auth = await self._client.auth_test()
        except SlackApiError as exc:
            raise ConfigError(
                f"Slack refused SLACK_BOT_TOKEN ({exc.response.get('error')})."
            ) from None
        except aiohttp.ClientError as exc:
            raise ConfigError(
                f"Slack's Web API is not reachable at SLACK_API_URL ({type(exc).__name__})."
            ) from None
        self._handlers.bot_user_id = auth.get("user_id")
        self._identity = f", team {auth.get('team_id')}, bot user {auth.get('user_id')}"

    async def _connect_socket(self) -> None:
        assert self._app_token is not None
        app_token = self._app_token.get_secret_value()
        try:
            opened = await self._client.apps_connections_open(app_token=app_token)
        except SlackApiError as exc:
            raise ConfigError(
                f"Slack refused SLACK_APP_TOKEN ({exc.response.get('error')}); it needs the "
                "connections:write scope."
            ) from None
        handler = AsyncSocketModeHandler(
            self._app, app_token=app_token, web_client=self._client, logger=logger
        )
        handler.client.wss_uri = str(opened["url"])
        # bolt's handler methods are untyped; name their types here.
        connect: Callable[[], Awaitable[None]] = handler.connect_async
        close: Callable[[], Awaitable[None]] = handler.close_async
        try:
            await asyncio.wait_for(connect(), self._socket_connect_timeout)
        except TimeoutError:
            await close()
            raise ConfigError("Could not connect to Slack's Socket Mode in time.") from None
        self._socket = handler
