"""Reconstruction error in the engine: one query per version whose rows are each window's
mergeable sums of the rows' errors (count, sum, sum of squares).

The error is SQL over the feature columns (``Reconstruction.standardised_sql`` and
``error_sql``): the standardised values in an inner SELECT, the error over them in the
next, and the sums grouped by window (and segment) outside, so it runs unchanged on any
engine that runs the other profiles and costs one scan of the feature columns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from watchkeeper.profiles.base import Base, Engine, Key, Source, Windowing, lead, sql_text
from watchkeeper.stats.reconstruction import Reconstruction


@dataclass(frozen=True)
class ErrorSums:
    """A window's rows and the sum and sum of squares of their reconstruction errors."""

    rows: int
    total: float
    squares: float

    @property
    def mean(self) -> float:
        return self.total / self.rows if self.rows else math.nan

    @property
    def std(self) -> float:
        """The rows' standard deviation (sample, n - 1)."""
        if self.rows < 2:
            return math.nan
        return math.sqrt(max(self.squares - self.total**2 / self.rows, 0.0) / (self.rows - 1))

    def __add__(self, other: ErrorSums) -> ErrorSums:
        return ErrorSums(
            self.rows + other.rows, self.total + other.total, self.squares + other.squares
        )


def reconstruction_sums(
    source: Source,
    fitted: Reconstruction,
    windowing: Windowing | None,
    engine: Engine,
) -> dict[Key, ErrorSums]:
    """Per window × version × segment of ``source``, the sums of its rows' errors."""
    base = Base.of(source, list(fitted.features), windowing, engine)
    q = engine.quote
    keys = [q(k) for k in base.group_keys()] + [q(f"wk_s{i}") for i in range(len(base.segments))]
    z = fitted.standardised_sql(q, sql_text)
    names = [f"wk_z{j}" for j in range(len(z))]
    standardised = ", ".join(f"{v} AS {n}" for v, n in zip(z, names, strict=True))
    inner = f"SELECT {lead(keys)}{standardised} FROM ({base.sql}) AS wk_t"
    errors = (
        f"(SELECT {lead(keys)}{fitted.error_sql(names)} AS wk_e FROM ({inner}) AS wk_z) AS wk_r"
    )
    measures = ["COUNT(*) AS rows", "SUM(wk_e) AS e1", "SUM(wk_e * wk_e) AS e2"]
    return {
        key: ErrorSums(int(parts.sums["rows"]), parts.sums["e1"], parts.sums["e2"])
        for key, parts in base.collect(engine.sql(base.query(errors, measures))).items()
    }


__all__ = ["ErrorSums", "reconstruction_sums"]
