"""The SDK logger for serving apps (``Logger``, to a watchkeeper server in the background)
and for batch jobs (``DirectLogger``, straight to the store)."""

from watchkeeper.client.logger import DirectLogger, Logger, Stats

__all__ = ["DirectLogger", "Logger", "Stats"]
