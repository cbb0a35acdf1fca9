"""The store: the only package that talks to the engine.

It hands out Ibis expressions and executes them; nothing outside it imports duckdb or an
Ibis backend. Engine errors become ``StoreError`` with the cause kept.
"""

from watchkeeper.store.engine import Store
from watchkeeper.store.tables import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "Store"]
