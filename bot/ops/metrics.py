"""Prometheus metrics on a per-process registry: jobs, upstream, queue, tokens, images, refusals."""

from __future__ import annotations

from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from bot.models import Usage

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# Image jobs take seconds to minutes: buckets up to the 180 s upstream timeout and beyond.
_JOB_BUCKETS = (0.5, 1, 2.5, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600)
_ATTEMPT_BUCKETS = (0.25, 0.5, 1, 2.5, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 180)
# A fixed set keeps the series bounded whatever a caller passes; anything else is "other".
REFUSAL_REASONS = (
    "access", "rate_limit", "quota", "queue_full", "input", "shutting_down", "other",
)  # fmt: skip


class GateState(Protocol):
    """What the gauges read from the job gate."""

    @property
    def in_flight(self) -> int: ...

    @property
    def queued(self) -> int: ...


class AttemptListener(Protocol):
    """Something else that wants each upstream attempt's outcome (the health tracker)."""

    def on_attempt(self, *, seconds: float, outcome: str) -> None: ...


class Metrics:
    """The bot's metrics; a JobObserver for the engine and an observer for the upstream client."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.jobs = Counter(
            "bot_jobs", "Finished jobs by platform and outcome (ok or the error's class name).",
            ["platform", "outcome"], registry=registry,
        )  # fmt: skip
        self.job_seconds = Histogram(
            "bot_job_duration_seconds", "Time from accepting a job to its end, queue included.",
            ["platform"], buckets=_JOB_BUCKETS, registry=registry,
        )  # fmt: skip
        self.upstream_seconds = Histogram(
            "bot_upstream_request_duration_seconds", "Duration of one upstream attempt.",
            ["outcome"], buckets=_ATTEMPT_BUCKETS, registry=registry,
        )  # fmt: skip
        self.upstream_retries = Counter(
            "bot_upstream_retries", "Upstream attempts retried, by reason.",
            ["reason"], registry=registry,
        )  # fmt: skip
        self.tokens = Counter(
            "bot_tokens", "Upstream tokens used, by platform and direction (input or output).",
            ["platform", "direction"], registry=registry,
        )  # fmt: skip
        self.images = Counter(
            "bot_images", "Images produced, by platform.", ["platform"], registry=registry
        )
        self.queue_depth = Gauge(
            "bot_queue_depth", "Jobs waiting for an upstream slot.", registry=registry
        )
        self.in_flight = Gauge(
            "bot_jobs_in_flight", "Jobs holding an upstream slot.", registry=registry
        )
        self.refusals = Counter(
            "bot_refusals", "Requests refused before any upstream call, by reason.",
            ["reason"], registry=registry,
        )  # fmt: skip
        for reason in REFUSAL_REASONS:  # every series from the start, so rates see the first one
            self.refusals.labels(reason=reason)
        self._attempt_listeners: list[AttemptListener] = []

    def watch_gate(self, gate: GateState) -> None:
        """Read the queue depth and in-flight jobs from the gate at every scrape."""
        self.queue_depth.set_function(lambda: float(gate.queued))
        self.in_flight.set_function(lambda: float(gate.in_flight))

    def on_job(self, *, platform: str, outcome: str, seconds: float, usage: Usage) -> None:
        """Count a finished job and what it used."""
        self.jobs.labels(platform=platform, outcome=outcome).inc()
        self.job_seconds.labels(platform=platform).observe(seconds)
        if usage.input_tokens:
            self.tokens.labels(platform=platform, direction="input").inc(usage.input_tokens)
        if usage.output_tokens:
            self.tokens.labels(platform=platform, direction="output").inc(usage.output_tokens)
        if usage.images:
            self.images.labels(platform=platform).inc(usage.images)

    def watch_upstream(self, listener: AttemptListener) -> None:
        """Pass each upstream attempt on to the listener too (the client has one observer)."""
        self._attempt_listeners.append(listener)

    def on_attempt(self, *, seconds: float, outcome: str) -> None:
        """Time one upstream attempt."""
        self.upstream_seconds.labels(outcome=outcome).observe(seconds)
        for listener in self._attempt_listeners:
            listener.on_attempt(seconds=seconds, outcome=outcome)

    def on_retry(self, *, reason: str, delay: float) -> None:
        """Count one retry of an upstream call."""
        self.upstream_retries.labels(reason=reason).inc()

    def on_refused(self, *, reason: str) -> None:
        """Count one refusal: access, rate_limit, quota, queue_full, input or shutting_down."""
        self.refusals.labels(reason=reason if reason in REFUSAL_REASONS else "other").inc()

    def render(self) -> bytes:
        """The registry in Prometheus text format (serve with CONTENT_TYPE)."""
        return generate_latest(self.registry)
