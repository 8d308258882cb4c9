"""Scripted answers of the gptproto fake: one Outcome per request, for every documented case."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Literal

from tests.fakes.gptproto_streams import gzip_of_zeros

Kind = Literal[
    "image", "text", "prompt_blocked", "output_blocked", "finish", "error", "raw", "drop",
    "stream",
]  # fmt: skip
ChatShape = Literal["gemini", "markdown", "images"]
ImagesShape = Literal["b64_json", "url"]

CLOUDFLARE_PAGE = (
    b"<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head>"
    b"<body><h1>Sorry, you have been blocked</h1><p>Cloudflare Ray ID: 8c1e2f</p></body></html>"
)


@dataclass(frozen=True)
class Outcome:
    """What the fake answers to one request; build one with the static constructors."""

    kind: Kind
    text: str = ""
    reason: str = ""
    status: int = 200
    error: dict[str, Any] | None = None
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    delay: float | None = None  # seconds before answering; None: the fake's latency
    mime: str = "image/png"
    count: int = 1
    shape: str | None = None  # chat: gemini/markdown/images; images endpoint: b64_json/url
    thinking: bool | None = None  # None: Gemini 3 models think, others do not
    candidates_null: bool = False
    repeat: bool = False  # stream: write the body again and again, never ending
    # Gemini 3 drafts as gptproto relays them: image parts with a thoughtSignature and no
    # `thought` flag, before the final image of each candidate.
    drafts: int = 0
    noise: int = 0  # bytes of random pixels in each image (a realistic 4K PNG is ~20 MB)

    def with_delay(self, seconds: float) -> Outcome:
        """The same outcome, answered after `seconds`."""
        return replace(self, delay=seconds)

    # -- 200 answers ------------------------------------------------------------

    @staticmethod
    def image(
        text: str = "",
        *,
        mime: str = "image/png",
        count: int = 1,
        shape: ChatShape | ImagesShape | None = None,
        thinking: bool | None = None,
        drafts: int = 0,
        noise: int = 0,
    ) -> Outcome:
        """Image(s), optionally with text; JPEG with mime="image/jpeg"; Gemini 3 style thinking.

        drafts: that many unflagged, signed draft images before each final one (Gemini 3);
        noise: about that many bytes of random pixels per image (see large_image).
        """
        return Outcome(
            "image", text=text, mime=mime, count=count, shape=shape, thinking=thinking,
            drafts=drafts, noise=noise,
        )  # fmt: skip

    @staticmethod
    def large_image(megabytes: int = 20, text: str = "") -> Outcome:
        """An image of about `megabytes` MB (a noise PNG): ask for 4K to get a real 4K's
        weight, over Discord's 10 MiB upload limit."""
        return Outcome.image(text, noise=megabytes * 1_000_000)

    @staticmethod
    def text_only(text: str = "Could you tell me more about the scene?") -> Outcome:
        """finishReason STOP with only text parts."""
        return Outcome("text", text=text)

    @staticmethod
    def prompt_blocked(reason: str = "SAFETY", *, candidates_null: bool = False) -> Outcome:
        """No candidates (or null), promptFeedback.blockReason."""
        return Outcome("prompt_blocked", reason=reason, candidates_null=candidates_null)

    @staticmethod
    def output_blocked(reason: str = "IMAGE_SAFETY") -> Outcome:
        """A candidate without content and a blocking finishReason."""
        return Outcome("output_blocked", reason=reason)

    @staticmethod
    def finish(reason: str = "NO_IMAGE", text: str = "") -> Outcome:
        """A candidate that stops without an image: NO_IMAGE, MAX_TOKENS, OTHER, SPII..."""
        return Outcome("finish", reason=reason, text=text)

    # -- errors -------------------------------------------------------------------

    @staticmethod
    def google_error(
        status: int,
        google_status: str,
        message: str,
        *,
        details: tuple[dict[str, Any], ...] = (),
        retry_after: str | None = None,
    ) -> Outcome:
        """A Google-style error body: {"error": {"code", "message", "status", "details"}}."""
        error = {"code": status, "message": message, "status": google_status}
        if details:
            error["details"] = list(details)
        headers = (("Retry-After", retry_after),) if retry_after is not None else ()
        return Outcome("error", status=status, error={"error": error}, headers=headers)

    @staticmethod
    def gptproto_error(status: int, message: str) -> Outcome:
        """A gptproto-style error body: {"error": {"message", "type": "<status>"}}."""
        error = {"error": {"message": message, "type": str(status)}}
        return Outcome("error", status=status, error=error)

    @staticmethod
    def invalid_argument(message: str = "Request contains an invalid argument.") -> Outcome:
        return Outcome.google_error(400, "INVALID_ARGUMENT", message)

    @staticmethod
    def unsafe_content() -> Outcome:
        return Outcome.gptproto_error(400, "The prompt contains unsafe content")

    @staticmethod
    def invalid_signature() -> Outcome:
        """401: gptproto's answer to a wrong key."""
        return Outcome.gptproto_error(401, "Invalid signature")

    @staticmethod
    def invalid_token() -> Outcome:
        return Outcome.gptproto_error(403, "Invalid Token")

    @staticmethod
    def permission_denied() -> Outcome:
        return Outcome.google_error(403, "PERMISSION_DENIED", "The caller does not have permission")

    @staticmethod
    def insufficient_balance() -> Outcome:
        return Outcome.gptproto_error(403, "Insufficient balance")

    @staticmethod
    def cloudflare_403() -> Outcome:
        return Outcome.raw(403, CLOUDFLARE_PAGE, content_type="text/html; charset=UTF-8")

    @staticmethod
    def model_not_found(model: str = "gemini-2.5-flash-image-preview") -> Outcome:
        message = (
            f"models/{model} is not found for API version v1beta, or is not supported "
            "for generateContent."
        )
        return Outcome.google_error(404, "NOT_FOUND", message)

    @staticmethod
    def rate_limited(retry_delay: str | None = "53s", *, retry_after: str | None = None) -> Outcome:
        """429 RESOURCE_EXHAUSTED, with RetryInfo.retryDelay and/or a Retry-After header."""
        details: tuple[dict[str, Any], ...] = ()
        if retry_delay is not None:
            details = (
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay},
            )
        return Outcome.google_error(
            429,
            "RESOURCE_EXHAUSTED",
            "Resource has been exhausted (e.g. check quota).",
            details=details,
            retry_after=retry_after,
        )

    @staticmethod
    def server_error(status: int = 500) -> Outcome:
        """500 INTERNAL, 502 (gateway), 503 overloaded, 504 DEADLINE_EXCEEDED."""
        if status == 503:
            return Outcome.overloaded()
        if status == 502:
            return Outcome.gptproto_error(502, "Bad Gateway")
        if status == 504:
            return Outcome.google_error(504, "DEADLINE_EXCEEDED", "Deadline expired.")
        return Outcome.google_error(status, "INTERNAL", "An internal error has occurred.")

    @staticmethod
    def overloaded(*, retry_after: str | None = None) -> Outcome:
        return Outcome.google_error(
            503,
            "UNAVAILABLE",
            "The model is overloaded. Please try again later.",
            retry_after=retry_after,
        )

    # -- broken answers -------------------------------------------------------------

    @staticmethod
    def raw(status: int, body: bytes, *, content_type: str = "application/json") -> Outcome:
        """Exactly these bytes with this status."""
        return Outcome("raw", status=status, body=body, content_type=content_type)

    @staticmethod
    def html(status: int = 200) -> Outcome:
        page = b"<html><body><h1>Welcome</h1><p>Please log in.</p></body></html>"
        return Outcome.raw(status, page, content_type="text/html")

    @staticmethod
    def empty(status: int = 200) -> Outcome:
        return Outcome.raw(status, b"")

    @staticmethod
    def bad_json() -> Outcome:
        return Outcome.raw(200, b'{"candidates": [{"content": ')

    @staticmethod
    def gzip_bomb(mebibytes: int = 1024) -> Outcome:
        """About a megabyte of gzip (Content-Encoding: gzip) that inflates to `mebibytes` MiB."""
        return Outcome.encoded(gzip_of_zeros(mebibytes), "gzip")

    @staticmethod
    def encoded(body: bytes, coding: str, *, status: int = 200) -> Outcome:
        """Bytes already encoded, streamed as they are under this Content-Encoding."""
        return Outcome("stream", status=status, body=body, headers=(("Content-Encoding", coding),))

    @staticmethod
    def endless(status: int = 200, chunk: bytes = b" " * 65536) -> Outcome:
        """A chunked body that never ends: the same chunk until the client hangs up."""
        return Outcome("stream", status=status, body=chunk, repeat=True)

    @staticmethod
    def drop() -> Outcome:
        """Close the connection without answering."""
        return Outcome("drop")

    @staticmethod
    def slow(seconds: float, then: Outcome | None = None) -> Outcome:
        """`then` (an image by default) after `seconds`."""
        return (then or Outcome.image()).with_delay(seconds)

    def error_body(self) -> bytes:
        return json.dumps(self.error).encode()
