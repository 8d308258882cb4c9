"""The one error tree of the bot; every error carries the sentence a user should see.

BotError                      user_message, exit_code
├── InputError                (2) the request itself cannot be served
│   ├── EmptyPrompt
│   ├── NotAnImage
│   ├── ImageTooLarge         also decompression bombs and oversize downloads
│   ├── TooManyImages
│   ├── UnsupportedOption     unknown ratio, mime type or size for the model
│   ├── InvalidRequest        the upstream answered 400 for another reason
│   ├── NothingToRefine       the thread, turn or its image is gone (or pruned)
│   └── BadArgument           a terminal argument that cannot work (thread name, OUT)
├── AccountError              (3) configuration or account problem
│   ├── ConfigError           a setting is missing or invalid
│   ├── AuthError             the API key was refused
│   ├── InsufficientBalance
│   └── UnknownModel          unknown or retired model (names the replacement)
├── DeclinedError             (4) the model answered, but with no image
│   ├── PromptBlocked         reason = promptFeedback.blockReason
│   ├── OutputBlocked         reason = finishReason
│   ├── ContentPolicy         gptproto's 400 "unsafe content"
│   ├── NoImage               reason = NO_IMAGE, MAX_TOKENS, OTHER, ...
│   └── TextOnly              text = what the model said instead
├── UpstreamError             (5) the upstream could not answer
│   ├── RateLimited           retry_after = seconds, when known
│   ├── Unavailable           5xx or connection failures after retries
│   ├── UpstreamTimeout
│   └── UnreadableResponse    HTML, empty body, bad JSON, bad image data
│       ├── AnswerTooLarge    limit, read = bytes; refused and never retried
│       └── DamagedImage      the model's image is incomplete, undecodable or a bomb
└── RefusedError              (5) the bot's own limits and rules said no
    ├── QueueFull
    ├── UserRateLimited       retry_after = seconds
    ├── QuotaExceeded         retry_after = seconds until the quota resets
    ├── BudgetExceeded        a monthly cost budget (user, role or workspace) would be passed
    ├── AccessDenied
    ├── ShuttingDown
    └── AlreadyHandled        a repeat of an event another delivery answers: say nothing
"""

from __future__ import annotations

import math
from datetime import date


def _in_words(seconds: float) -> str:
    """A short human duration: '40 seconds', '3 minutes', '5 hours'."""
    seconds = max(1, math.ceil(seconds))
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    if minutes < 90:
        return f"{minutes} minutes"
    hours = math.ceil(minutes / 60)
    return f"{hours} hours"


class BotError(Exception):
    """Base of every error the bot explains to a user."""

    exit_code = 1
    default_message = "Something went wrong."
    # Upstream calls behind this failure that may have made, and billed, an image anyway (the
    # request was sent whole, then the connection dropped or timed out); set by the client.
    possibly_billed: int = 0

    def __init__(self, user_message: str | None = None) -> None:
        self.user_message = user_message or self.default_message
        super().__init__(self.user_message)


# -- input -----------------------------------------------------------------


class InputError(BotError):
    exit_code = 2
    default_message = "That request cannot be served."


class EmptyPrompt(InputError):
    default_message = "Please describe the image you want (the prompt is empty)."


class NotAnImage(InputError):
    def __init__(self, name: str = "", detail: str = "") -> None:
        what = f"'{name}'" if name else "That file"
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"{what} is not an image I can read{extra}. "
            "Please attach a PNG, JPEG, WebP, GIF, BMP or TIFF picture."
        )


class ImageTooLarge(InputError):
    def __init__(self, name: str = "", detail: str = "") -> None:
        what = f"'{name}'" if name else "That image"
        super().__init__(f"{what} is too large: {detail or 'please attach a smaller picture'}.")


class TooManyImages(InputError):
    def __init__(self, *, limit: int, given: int, with_current: bool = False) -> None:
        self.limit = limit
        if with_current:
            allowed = limit - 1
            message = (
                f"Too many images: this model takes {limit} at a time, so the current "
                f"image + at most {allowed} attachment{'s' if allowed != 1 else ''} "
                f"(you sent {given - 1})."
            )
        else:
            message = f"Too many images: this model takes at most {limit} (you sent {given})."
        super().__init__(message)


class UnsupportedOption(InputError): ...


class InvalidRequest(InputError):
    default_message = "The image service could not process that request."


class NothingToRefine(InputError):
    default_message = "There is no image to refine here any more. Start a new one with /imagine."


class BadArgument(InputError):
    default_message = "One of the command's arguments cannot be used."


# -- account and configuration ----------------------------------------------


class AccountError(BotError):
    exit_code = 3
    default_message = "The bot's account with the image service has a problem."


class ConfigError(AccountError):
    pass


class AuthError(AccountError):
    default_message = (
        "The image service refused the bot's API key. The bot's operator needs to check "
        "GPTPROTO_API_KEY."
    )


class InsufficientBalance(AccountError):
    default_message = (
        "The bot's image-service account has run out of balance. The bot's operator needs "
        "to top it up."
    )


class UnknownModel(AccountError):
    def __init__(
        self, model: str, replacement: str | None = None, *, retired_on: date | None = None
    ) -> None:
        self.model = model
        self.replacement = replacement
        when = f" on {retired_on.isoformat()}" if retired_on else ""
        if replacement:
            message = (
                f"The model '{model}' has been retired{when}; use '{replacement}' instead "
                "(choose it with the model option, or set IMAGE_MODEL)."
            )
        else:
            message = (
                f"The image service does not know the model '{model}'. Choose another model "
                "(the model option, or IMAGE_MODEL)."
            )
        super().__init__(message)


# -- declined ----------------------------------------------------------------


class DeclinedError(BotError):
    exit_code = 4
    default_message = "The model declined to make that image."


class PromptBlocked(DeclinedError):
    def __init__(self, reason: str = "OTHER") -> None:
        self.reason = reason
        super().__init__(
            f"The prompt was blocked by the model's safety filter (reason: {reason}). "
            "Try rewording it."
        )


class OutputBlocked(DeclinedError):
    def __init__(self, reason: str = "OTHER") -> None:
        self.reason = reason
        super().__init__(
            f"The model made an image but its safety filter withheld it (reason: {reason}). "
            "Try a different prompt."
        )


class ContentPolicy(DeclinedError):
    def __init__(self, detail: str = "") -> None:
        self.detail = detail
        super().__init__(
            "The image service refused the prompt as unsafe content. Try rewording it."
        )


class NoImage(DeclinedError):
    def __init__(self, reason: str = "NO_IMAGE", text: str = "") -> None:
        self.reason = reason
        self.text = text
        said = f' The model said: "{text}"' if text else ""
        super().__init__(
            f"The model finished without producing an image (reason: {reason}). "
            f"Try again or describe the picture more concretely.{said}"
        )


class TextOnly(DeclinedError):
    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__(f"The model answered with words instead of an image: {text}")


# -- upstream ----------------------------------------------------------------


class UpstreamError(BotError):
    exit_code = 5
    default_message = "The image service is not answering right now. Please try again later."


class RateLimited(UpstreamError):
    def __init__(self, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        when = f" in {_in_words(retry_after)}" if retry_after else " in a minute"
        super().__init__(f"The image service is busy (rate limited). Please try again{when}.")


class Unavailable(UpstreamError): ...


class UpstreamTimeout(UpstreamError):
    default_message = "The image service took too long to answer. Please try again."


class UnreadableResponse(UpstreamError):
    default_message = (
        "The image service answered with something that is not a valid response. "
        "Please try again later."
    )


class AnswerTooLarge(UnreadableResponse):
    def __init__(self, *, limit: int, read: int = 0) -> None:
        self.limit, self.read = limit, read
        size = f"{limit / 1e6:,.0f} MB" if limit >= 1e6 else f"{max(1, round(limit / 1e3))} kB"
        super().__init__(
            f"The image service sent an answer over {size}, which is more than any image "
            "needs; nothing was kept."
        )


class DamagedImage(UnreadableResponse):
    default_message = "The model's image arrived damaged; please try again."


# -- refused by the bot's own rules -----------------------------------------------


class RefusedError(BotError):
    exit_code = 5
    default_message = "The bot cannot take that request right now."


class QueueFull(RefusedError):
    default_message = (
        "The bot is very busy and its queue is full. Please try again in a few minutes."
    )


class UserRateLimited(RefusedError):
    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(
            f"You are making images quickly: please wait {_in_words(retry_after)} and try again."
        )


class QuotaExceeded(RefusedError):
    def __init__(self, *, limit: int, retry_after: float) -> None:
        self.limit = limit
        self.retry_after = retry_after
        super().__init__(
            f"You have used your {limit} images for today. The quota resets in "
            f"{_in_words(retry_after)}."
        )


class BudgetExceeded(RefusedError):
    def __init__(self, *, whose: str, budget_usd: float, spent_usd: float, cost_usd: float) -> None:
        self.whose = whose
        self.budget_usd = budget_usd
        self.spent_usd = spent_usd
        super().__init__(
            f"That would pass {whose} monthly budget of ${budget_usd:.2f}: ${spent_usd:.2f} is "
            f"spent this month and this request costs about ${cost_usd:.2f}. Ask for fewer or "
            "smaller images, or ask an admin to raise the budget; it resets on the 1st (UTC)."
        )


class AccessDenied(RefusedError):
    default_message = "You are not allowed to use this bot here."


class ShuttingDown(RefusedError):
    default_message = "The bot is restarting. Please try again in a minute."


class AlreadyHandled(RefusedError):
    """Another delivery of the same event (here or in another process) answers it."""

    default_message = "That message is already being answered."
