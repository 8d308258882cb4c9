"""stub."""
from bench.report import Row
from bench.sizes import Context
NAME = "loop_lag"
async def run(context: Context) -> list[Row]:
    return []
