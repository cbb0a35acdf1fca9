"""The SDK for serving apps: loggers to a watchkeeper server (``Logger`` from a background
thread, ``AsyncLogger`` from an asyncio task) and for batch jobs (``DirectLogger``, straight
to the store); ``watch`` and ``WatchkeeperMiddleware`` log each served prediction with its
latency and status."""

from watchkeeper.client.logger import AsyncLogger, DirectLogger, Logger, Stats
from watchkeeper.client.serving import WatchkeeperMiddleware, current_event_id, record, watch

__all__ = [
    "AsyncLogger",
    "DirectLogger",
    "Logger",
    "Stats",
    "WatchkeeperMiddleware",
    "current_event_id",
    "record",
    "watch",
]
