"""An incident library: production histories with planted incidents of known classes, each
with its truth, and an honest replay that grades what the monitor did about them.

Shared by the tests and ``bench/incidents.py``; the demo has its own scenario."""

from watchkeeper.incidents.classes import CLASSES, QUIET, REGRESSION, History, Truth, draw

__all__ = ["CLASSES", "QUIET", "REGRESSION", "History", "Truth", "draw"]
