"""Moved beneath the apps to config/queue.py (accounts queues work too and never imports billing);
re-exported here so billing's and support's callers keep working."""

from config.queue import enqueue_after_commit

__all__ = ["enqueue_after_commit"]
