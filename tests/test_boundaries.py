"""The house rules of DESIGN.md, checked by reading every module's imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLATFORM_SDKS = {"discord", "slack_bolt", "slack_sdk"}
SQL_DRIVERS = {"aiosqlite", "sqlite3", "asyncpg", "psycopg"}
HTTP_LIBRARIES = {"httpx", "aiohttp", "requests", "urllib3"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _top(name: str) -> str:
    return name.split(".")[0]


@pytest.mark.parametrize("path", _modules("bot"), ids=lambda p: p.name)
def test_core_imports_no_sdk_no_sql_and_no_concrete_classes(path: Path) -> None:
    imports = _imports(path)
    assert not {_top(name) for name in imports} & (PLATFORM_SDKS | SQL_DRIVERS)
    if path.name == "__main__.py":
        return  # the composition root is the one place that wires concrete classes
    assert not {name for name in imports if _top(name) == "adapters"}
    assert {name for name in imports if _top(name) == "storage"} <= {"storage.base"}


@pytest.mark.parametrize("path", _modules("adapters"), ids=lambda p: p.name)
def test_adapters_never_touch_sql(path: Path) -> None:
    imports = _imports(path)
    assert not {_top(name) for name in imports} & SQL_DRIVERS
    assert {name for name in imports if _top(name) == "storage"} <= {"storage.base"}


@pytest.mark.parametrize("path", _modules("storage"), ids=lambda p: p.name)
def test_storage_knows_no_http_and_no_platform(path: Path) -> None:
    imports = {_top(name) for name in _imports(path)}
    assert not imports & (HTTP_LIBRARIES | PLATFORM_SDKS | {"adapters"})


def test_every_package_is_checked() -> None:
    assert _modules("bot") and _modules("adapters") and _modules("storage")


@pytest.mark.parametrize("module", ["bot.core", "bot.gptproto", "bot.images", "bot.config"])
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
