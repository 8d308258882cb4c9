"""The upstream: the ImageGenerator port and its values, and the gptproto client behind it."""

from __future__ import annotations

from bot.upstream.gptproto import GptProtoClient, UpstreamObserver
from bot.upstream.parts import reference_part, restore_parts
from bot.upstream.pools import open_client
from bot.upstream.port import (
    MODELS,
    RATIO_SIZES,
    RATIOS,
    RETIRED_MODELS,
    Api,
    Content,
    Generation,
    GenerationRequest,
    ImageGenerator,
    ModelCapabilities,
    Part,
    capabilities,
    check_request,
)
from bot.upstream.retry import RetryPolicy, classify_status, error_status

__all__ = [
    "MODELS",
    "RATIOS",
    "RATIO_SIZES",
    "RETIRED_MODELS",
    "Api",
    "Content",
    "Generation",
    "GenerationRequest",
    "GptProtoClient",
    "ImageGenerator",
    "ModelCapabilities",
    "Part",
    "RetryPolicy",
    "UpstreamObserver",
    "capabilities",
    "check_request",
    "classify_status",
    "error_status",
    "open_client",
    "reference_part",
    "restore_parts",
]
