"""``watchkeeper serve``: the HTTP API, the scheduler and the Prometheus exporter."""

from watchkeeper.server.app import create_app

__all__ = ["create_app"]
