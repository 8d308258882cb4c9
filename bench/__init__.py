"""Benchmarks of the bot's own cost: `python -m bench` (full) or `python -m bench --smoke`."""
