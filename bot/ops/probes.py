"""`check --online`: one cheap authenticated call per credential, nothing generated or posted."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from bot.config import Settings, model_table
from bot.errors import ContentPolicy, InvalidRequest, RateLimited, UnknownModel
from bot.ops.preflight import Finding, failed
from bot.upstream import Api, classify_status, error_status

DISCORD_API = "https://discord.com/api/v10"
PROBE_TIMEOUT = 15.0

# An empty request on the configured endpoint family: the gateway authenticates the key and
# resolves the model, then refuses the request as invalid (400) before any image is made.
_EMPTY_REQUESTS: dict[Api, tuple[str, dict[str, Any]]] = {
    Api.GEMINI: ("/v1beta/models/{model}:generateContent", {"contents": []}),
    Api.OPENAI_IMAGES: ("/v1/images/generations", {"model": "{model}", "prompt": ""}),
    Api.OPENAI_CHAT: ("/v1/chat/completions", {"model": "{model}", "messages": []}),
}


async def online_findings(settings: Settings, *, http: httpx.AsyncClient) -> list[Finding]:
    """Verify the API key and each configured token; never prints or logs a secret."""
    probes = [_upstream(settings, http)]
    if settings.discord_token is not None:
        probes.append(_discord(settings, http))
    if settings.slack_bot_token is not None:
        probes.append(_slack(settings, http, "auth.test", app=False))
        if settings.slack_app_token is not None:
            probes.append(_slack(settings, http, "apps.connections.open", app=True))
    return list(await asyncio.gather(*probes))


def _json(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None


def _unreachable(subject: str, url: str, exc: httpx.HTTPError) -> Finding:
    reason = type(exc).__name__
    return Finding(subject, f"cannot reach {url.split('?')[0]} ({reason})", 5)


async def _upstream(settings: Settings, http: httpx.AsyncClient) -> Finding:
    subject = "upstream online"
    if settings.gptproto_api_key is None:
        return Finding(subject, "skipped: GPTPROTO_API_KEY is not set", 3)
    finding, gone = await _probe(settings, http, settings.image_model)
    if not gone:
        return finding
    # The default model does not answer: name one the account does answer for, if any.
    for model in model_table(settings).current():
        if model == settings.image_model:
            continue
        other, other_gone = await _probe(settings, http, model)
        if other.ok and not other_gone:
            return Finding(
                subject,
                f"{finding.text} {model} does answer: set IMAGE_MODEL={model}.",
                finding.exit_code,
            )
    return Finding(subject, f"{finding.text} No known model answers either.", finding.exit_code)


async def _probe(settings: Settings, http: httpx.AsyncClient, model: str) -> tuple[Finding, bool]:
    """The finding for one model, and whether the service said the model is gone."""
    subject = "upstream online"
    key = settings.gptproto_api_key.get_secret_value() if settings.gptproto_api_key else ""
    path, body = _EMPTY_REQUESTS[settings.image_api]
    url = str(settings.gptproto_base_url).rstrip("/") + path.format(model=model)
    payload = {name: value.format(model=model) if isinstance(value, str) else value
               for name, value in body.items()}  # fmt: skip
    authorization = f"Bearer {key}" if settings.gptproto_auth_scheme == "bearer" else key
    try:
        response = await http.post(url, json=payload, headers={"Authorization": authorization})
    except httpx.HTTPError as exc:
        return _unreachable(subject, url, exc), False
    answer = _json(response)
    status = response.status_code
    if 200 <= status < 300:
        status = error_status(answer) or status
    if 200 <= status < 300:
        return Finding(subject, f"API key accepted by {url.split('/v1')[0]} for {model}"), False
    error = classify_status(status, answer, response.headers, model=model, scrub=str).error
    if isinstance(error, InvalidRequest | ContentPolicy):
        return Finding(
            subject, f"API key accepted for {model} (the empty probe was refused)"
        ), False
    if isinstance(error, RateLimited):
        warning = "API key accepted, but the service is rate limiting"
        return Finding(subject, warning, warning=True), False
    return failed(subject, error), isinstance(error, UnknownModel)


async def _discord(settings: Settings, http: httpx.AsyncClient) -> Finding:
    subject = "discord online"
    assert settings.discord_token is not None
    base = str(settings.discord_api_base_url or DISCORD_API).rstrip("/")
    url = base + "/users/@me"
    headers = {"Authorization": f"Bot {settings.discord_token.get_secret_value()}"}
    try:
        response = await http.get(url, headers=headers)
    except httpx.HTTPError as exc:
        return _unreachable(subject, url, exc)
    user = _json(response)
    if response.status_code == 200 and isinstance(user, dict):
        return Finding(subject, f"token accepted: bot {user.get('username')} ({user.get('id')})")
    if response.status_code == 401:
        return Finding(subject, "DISCORD_TOKEN was refused (HTTP 401): reset it in the portal", 3)
    return Finding(subject, f"Discord answered HTTP {response.status_code} to GET /users/@me", 5)


async def _slack(settings: Settings, http: httpx.AsyncClient, method: str, *, app: bool) -> Finding:
    subject = "slack online"
    secret = settings.slack_app_token if app else settings.slack_bot_token
    assert secret is not None
    name = "SLACK_APP_TOKEN" if app else "SLACK_BOT_TOKEN"
    url = str(settings.slack_api_url).rstrip("/") + "/" + method
    headers = {"Authorization": f"Bearer {secret.get_secret_value()}"}
    try:
        response = await http.post(url, headers=headers)
    except httpx.HTTPError as exc:
        return _unreachable(subject, url, exc)
    answer = _json(response)
    if not isinstance(answer, dict):
        return Finding(subject, f"{method} answered HTTP {response.status_code}, not JSON", 5)
    if not answer.get("ok"):
        error = str(answer.get("error", "unknown error"))
        return Finding(subject, f"{name} was refused by {method}: {error}", 3)
    if app:
        return Finding(subject, "app token accepted: Socket Mode can connect")
    return Finding(
        subject,
        f"bot token accepted: workspace {answer.get('team')} ({answer.get('team_id')}), "
        f"bot user {answer.get('user')} ({answer.get('user_id')})",
    )


def make_client() -> httpx.AsyncClient:
    """The client the probes share: short timeout, no redirects followed."""
    return httpx.AsyncClient(timeout=PROBE_TIMEOUT, follow_redirects=False)
