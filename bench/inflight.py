"""stub."""
from bench.report import Row
from bench.sizes import Context
NAME = "inflight"
async def run(context: Context) -> list[Row]:
    return []
