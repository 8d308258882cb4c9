"""A WebServer under a low open-file limit, run as its own process by the crowding tests.

`python -m tests.ops.crowd_server FILES [CAP|-] [HEADER_TIMEOUT]` lowers RLIMIT_NOFILE to FILES,
serves /healthz on 127.0.0.1:0 (header timeout 1 s unless given), prints the port, stops when
stdin closes, and logs how many connections its header timeout dropped.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import sys

from prometheus_client import CollectorRegistry

from bot.ops import Health, Metrics, Phase, WebServer


async def _answers() -> bool:
    return True


async def _serve(cap: int | None, header_timeout: float) -> None:
    health = Health(_answers)
    health.phase = Phase.SERVING
    server = WebServer(
        health=health,
        metrics=Metrics(CollectorRegistry()),
        host="127.0.0.1",
        port=0,
        max_connections=cap,
        header_timeout=header_timeout,
    )
    beating = asyncio.create_task(health.heartbeat())
    await server.start()
    print(server.port, flush=True)
    stdin = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    await stdin.read()
    await server.stop()
    logging.getLogger(__name__).info("header timeouts: %d", server.guard.timed_out)
    beating.cancel()


def main() -> None:
    files = int(sys.argv[1])
    cap = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2] != "-" else None
    header_timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (files, hard))
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(_serve(cap, header_timeout))


if __name__ == "__main__":
    main()
