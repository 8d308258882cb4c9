"""Each room's __init__ is its whole public surface: exactly the names listed here."""

from __future__ import annotations

import importlib
import types

import pytest

SURFACES: dict[str, set[str]] = {
    "bot.engine": {
        "AccessPolicy", "BUDGET_USAGE", "BudgetChange", "BudgetDefaults", "Deliver", "ELSEWHERE",
        "Engine", "EngineOptions", "GONE", "INTERRUPTED", "MAX_COUNT", "UPSCALE_PROMPT",
        "parse_change", "upscale_size",
        "InProcessQueue", "JobHandler", "JobQueue", "Spawn",
        "JobCounter", "JobGate", "JobObserver", "PRUNED", "QueueCallback", "UsageReport",
        "UsageSource", "UserLimits", "clean_prompt", "price_table", "usage_report", "visible",
    },
    "bot.upstream": {
        "Api", "BUILTIN", "Content", "Generation", "GenerationRequest", "GptProtoClient",
        "ImageGenerator", "MODELS", "ModelCapabilities", "ModelTable", "ONE_SIZE", "Part",
        "RATIOS", "RATIO_SIZES", "RETIRED_MODELS", "Retirement", "SIZES", "WIDE_RATIOS",
        "check_options",
        "RetryPolicy", "UpstreamObserver", "capabilities", "check_request", "classify_status",
        "error_status", "open_client", "reference_part", "restore_parts",
    },
    "bot.images": {
        "DAMAGED", "ImageWorkers",
        "few_arenas", "LABELS", "MAX_IMAGE_BYTES", "MAX_PIXELS", "MAX_SIDE",
        "MAX_SOURCE_PIXELS", "PREVIEW_TYPES", "Preview", "normalise", "normalise_all", "preview",
        "sniff", "verify_output",
    },
    "bot.ops": {
        "Adapter", "FileRoute", "Finding", "Health", "Links", "Metrics", "Phase", "REDACTED",
        "RedactSecrets", "Retention", "Role", "RunPlan", "Service", "TruncateRecords",
        "UpstreamTracker", "WebServer", "configure_logging", "failed", "link_key", "links_from",
        "make_client",
        "offline_findings", "online_findings", "plan_run", "secret_values", "slack_over_http",
    },
    "adapters.discord": {"DiscordAdapter"},
    "adapters.slack": {"EVENTS_PATH", "SlackAdapter"},
}  # fmt: skip


@pytest.mark.parametrize("package", sorted(SURFACES))
def test_the_root_exports_exactly_its_listed_names(package: str) -> None:
    module = importlib.import_module(package)
    assert set(module.__all__) == SURFACES[package]
    assert len(module.__all__) == len(set(module.__all__)), "a name is listed twice"
    for name in module.__all__:
        assert hasattr(module, name), f"{package}.__all__ names {name}, which it does not define"


@pytest.mark.parametrize("package", sorted(SURFACES))
def test_nothing_public_lies_beside_the_listed_names(package: str) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:
        getattr(module, name)  # a name loaded on first use is then in the namespace too
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)  # submodules are attributes once imported
        and name != "annotations"  # from __future__ import annotations
    }
    assert public == set(module.__all__)
