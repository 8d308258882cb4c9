"""The house rules of docs/architecture.md, checked by reading every module's imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLATFORM_SDKS = {"discord", "slack_bolt", "slack_sdk"}
SQL_DRIVERS = {"aiosqlite", "sqlite3", "asyncpg", "psycopg", "procrastinate"}
HTTP_LIBRARIES = {"httpx", "aiohttp", "requests", "urllib3"}
# The composition root (with its helper) and the command line that calls it wire concrete
# classes; nothing else.
WIRING = {"bot/bootstrap.py", "bot/__main__.py"}
# Packages whose __init__ is their public surface: other packages import only from the root.
ROOMS = (
    "bot.engine",
    "bot.upstream",
    "bot.images",
    "bot.ops",
    "adapters.discord",
    "adapters.slack",
)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(*packages: str) -> list[Path]:
    return sorted(path for package in packages for path in (ROOT / package).rglob("*.py"))


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _top(name: str) -> str:
    return name.split(".")[0]


@pytest.mark.parametrize("path", _modules("bot"), ids=_name)
def test_core_imports_no_sdk_no_sql_and_no_concrete_classes(path: Path) -> None:
    imports = _imports(path)
    assert not {_top(name) for name in imports} & (PLATFORM_SDKS | SQL_DRIVERS)
    if _name(path) in WIRING:
        return
    assert not {name for name in imports if _top(name) == "adapters"}
    assert {name for name in imports if _top(name) == "storage"} <= {"storage.base"}


@pytest.mark.parametrize("path", _modules("adapters"), ids=_name)
def test_adapters_never_touch_sql(path: Path) -> None:
    imports = _imports(path)
    assert not {_top(name) for name in imports} & SQL_DRIVERS
    assert {name for name in imports if _top(name) == "storage"} <= {"storage.base"}


@pytest.mark.parametrize("path", _modules("storage"), ids=_name)
def test_storage_knows_no_http_and_no_platform(path: Path) -> None:
    imports = {_top(name) for name in _imports(path)}
    assert not imports & (HTTP_LIBRARIES | PLATFORM_SDKS | {"adapters"})


@pytest.mark.parametrize("path", _modules("bot", "adapters", "storage", "bench"), ids=_name)
def test_other_rooms_are_entered_through_their_root(path: Path) -> None:
    module = _name(path).removesuffix(".py").replace("/", ".")
    reaching_in = _reaching_in(module, _imports(path))
    assert not reaching_in, f"import these from the package root instead: {sorted(reaching_in)}"


def _reaching_in(module: str, imports: set[str]) -> set[str]:
    """The imports of a module inside another room rather than at its root."""
    return {
        name
        for name in imports
        for room in ROOMS
        if name.startswith(room + ".") and not module.startswith(room + ".")
    }


def test_the_rules_see_every_room() -> None:
    names = {_name(path) for path in _modules("bot", "adapters", "storage")}
    for room in ROOMS:
        assert f"{room.replace('.', '/')}/__init__.py" in names
    assert names >= WIRING


def test_a_module_reaching_into_a_room_is_caught(tmp_path: Path) -> None:
    offender = tmp_path / "offender.py"
    offender.write_text(
        "from bot.engine.turns import TurnRunner\nimport adapters.slack.jobs\n"
        "from bot.engine import Engine\nfrom bot.engine.admission import JobGate\n"
    )
    imports = _imports(offender)
    assert _reaching_in("adapters.discord.adapter", imports) == {
        "bot.engine.turns",
        "adapters.slack.jobs",
        "bot.engine.admission",
    }
    # Inside its own room a module imports its siblings directly.
    assert _reaching_in("bot.engine.engine", imports) == {"adapters.slack.jobs"}


@pytest.mark.parametrize(
    "module", ["bot.engine", "bot.upstream", "bot.images", "bot.ops", "bot.config"]
)
def test_importing_the_core_loads_no_platform_sdk_or_sql_driver(module: str) -> None:
    probe = (
        f"import sys, {module}; "
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{sorted(PLATFORM_SDKS | SQL_DRIVERS)!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert result.stdout.strip() == ""


def test_a_process_on_sqlite_never_loads_the_job_queue_driver() -> None:
    """procrastinate and psycopg are imported where the PostgreSQL queue is built, only."""
    probe = (
        "import sys, bot.bootstrap, adapters.slack; "
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('procrastinate', 'psycopg', 'psycopg_pool'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert result.stdout.strip() == ""
