"""The upstream: the ImageGenerator port and its values, and the gptproto client behind it."""

from __future__ import annotations

from bot.upstream.catalog import (
    MODELS,
    ONE_SIZE,
    RATIO_SIZES,
    RATIOS,
    RETIRED_MODELS,
    SIZES,
    WIDE_RATIOS,
    ModelCapabilities,
    ModelTable,
    Retirement,
)
from bot.upstream.gptproto import GptProtoClient, UpstreamObserver
from bot.upstream.parts import reference_part, restore_parts
from bot.upstream.pools import open_client
from bot.upstream.port import (
    BUILTIN,
    Api,
    Content,
    Generation,
    GenerationRequest,
    ImageGenerator,
    Part,
    capabilities,
    check_options,
    check_request,
)
from bot.upstream.retry import RetryPolicy, classify_status, error_status

__all__ = [
    "BUILTIN",
    "MODELS",
    "ONE_SIZE",
    "RATIOS",
    "RATIO_SIZES",
    "RETIRED_MODELS",
    "SIZES",
    "WIDE_RATIOS",
    "Api",
    "Content",
    "Generation",
    "GenerationRequest",
    "GptProtoClient",
    "ImageGenerator",
    "ModelCapabilities",
    "ModelTable",
    "Part",
    "Retirement",
    "RetryPolicy",
    "UpstreamObserver",
    "capabilities",
    "check_options",
    "check_request",
    "classify_status",
    "error_status",
    "open_client",
    "reference_part",
    "restore_parts",
]
