"""The Slack adapter: mentions, thread replies, DMs, /imagine and buttons, over bolt."""

from adapters.slack.adapter import EVENTS_PATH, SlackAdapter

__all__ = ["EVENTS_PATH", "SlackAdapter"]
