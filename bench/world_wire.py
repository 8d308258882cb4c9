"""What bench.world_process and its parts say on stdout: one JSON object per line."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

# Every benchmark prompt carries its job number, so each side can tell whose request it sees.
JOB_TAG = re.compile(r"\[job:(\d+)\]")
JOB_TAG_BYTES = re.compile(rb"\[job:(\d+)\]")
SMALL_SIDE = (256, 256)  # the "small PNG" a user attaches to a mention


def emit(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def job_of(text: str) -> str | None:
    """The job number a prompt carries, or None."""
    found = JOB_TAG.findall(text)
    return found[-1] if found else None
