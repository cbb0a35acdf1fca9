"""`watchkeeper demo`: sixty days of a production fraud model with planted incidents, run
end to end on the embedded store."""

from watchkeeper.demo.run import run_demo
from watchkeeper.demo.scenario import INCIDENTS, START

__all__ = ["INCIDENTS", "START", "run_demo"]
