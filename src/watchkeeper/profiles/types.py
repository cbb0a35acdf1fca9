"""Profiles: the small, typed, mergeable aggregates of one window × segment.

A ``ColumnProfile`` is counts over the column's bins plus moments. Bins are fixed by the
reference: for a numeric column, ``[below, b_1 … b_k, above]`` over the reference's edges;
for a categorical one, ``[c_1 … c_K, other, unseen]`` over its vocabulary. Because the bins
are fixed, profiles of the same column add up: an hour's profiles merged give the day's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

ColumnKind = Literal["numeric", "categorical"]


@dataclass(frozen=True, eq=False)
class ColumnProfile:
    kind: ColumnKind
    count: int  # rows in the window, missing values included
    missing: int
    bins: np.ndarray[Any, np.dtype[np.int64]]
    total: float = 0.0  # sum of the non-missing values (numeric)
    total_sq: float = 0.0
    low: float = float("nan")  # min and max of the non-missing values (numeric)
    high: float = float("nan")

    @classmethod
    def zero(cls, kind: ColumnKind, n_bins: int) -> ColumnProfile:
        return cls(kind, 0, 0, np.zeros(n_bins, dtype=np.int64))

    @property
    def present(self) -> int:
        return self.count - self.missing

    @property
    def mean(self) -> float:
        return self.total / self.present if self.present else float("nan")

    @property
    def std(self) -> float:
        """Population standard deviation from the moments."""
        if not self.present:
            return float("nan")
        var = max(self.total_sq / self.present - self.mean**2, 0.0)
        return float(np.sqrt(var))

    def merge(self, other: ColumnProfile) -> ColumnProfile:
        if self.kind != other.kind or len(self.bins) != len(other.bins):
            raise ValueError("profiles over different bins cannot be merged")
        return ColumnProfile(
            self.kind,
            self.count + other.count,
            self.missing + other.missing,
            self.bins + other.bins,
            self.total + other.total,
            self.total_sq + other.total_sq,
            float(np.fmin(self.low, other.low)),
            float(np.fmax(self.high, other.high)),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ColumnProfile):
            return NotImplemented
        return (
            self.kind == other.kind
            and (self.count, self.missing) == (other.count, other.missing)
            and np.array_equal(self.bins, other.bins)
            and np.allclose(
                [self.total, self.total_sq, self.low, self.high],
                [other.total, other.total_sq, other.low, other.high],
                rtol=1e-9,
                atol=1e-9,
                equal_nan=True,
            )
        )

    __hash__ = None  # type: ignore[assignment]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "count": self.count,
            "missing": self.missing,
            "bins": self.bins.tolist(),
            "total": self.total,
            "total_sq": self.total_sq,
            "low": None if np.isnan(self.low) else self.low,
            "high": None if np.isnan(self.high) else self.high,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ColumnProfile:
        return cls(
            data["kind"],
            int(data["count"]),
            int(data["missing"]),
            np.asarray(data["bins"], dtype=np.int64),
            float(data["total"]),
            float(data["total_sq"]),
            float("nan") if data["low"] is None else float(data["low"]),
            float("nan") if data["high"] is None else float(data["high"]),
        )


@dataclass(frozen=True, eq=False)
class Profile:
    """One window × model version × segment: its rows, errors and column profiles."""

    rows: int = 0
    errors: int = 0
    columns: Mapping[str, ColumnProfile] = field(default_factory=dict)

    @classmethod
    def zero(cls) -> Profile:
        return cls()

    def merge(self, other: Profile) -> Profile:
        names = list(dict.fromkeys([*self.columns, *other.columns]))
        merged = {}
        for name in names:
            a, b = self.columns.get(name), other.columns.get(name)
            merged[name] = a.merge(b) if a is not None and b is not None else (a or b)
        return Profile(self.rows + other.rows, self.errors + other.errors, merged)  # type: ignore[arg-type]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Profile):
            return NotImplemented
        return (
            (self.rows, self.errors) == (other.rows, other.errors)
            and self.columns.keys() == other.columns.keys()
            and all(self.columns[k] == other.columns[k] for k in self.columns)
        )

    __hash__ = None  # type: ignore[assignment]


def merge_all(profiles: list[Profile]) -> Profile:
    out = Profile()
    for p in profiles:
        out = out.merge(p)
    return out
