"""Start an aiohttp app on 127.0.0.1 on a free port: how every local fake and test server runs."""

from __future__ import annotations

from typing import Any

from aiohttp import web


async def serve_locally(
    app: web.Application, *, backlog: int = 128, **runner_options: Any
) -> tuple[web.AppRunner, int]:
    """The started runner (clean it up when done) and the port the system gave it."""
    runner = web.AppRunner(app, **runner_options)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, backlog=backlog).start()
    return runner, int(runner.addresses[0][1])
