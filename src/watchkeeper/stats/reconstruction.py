"""Reconstruction drift: how well the reference's principal components still describe a
window's rows (a change in how features move together that no single feature shows).

Fitted once on a sample of the reference and kept as data: numeric features standardised
on the reference (a missing value is imputed with the mean, so it standardises to 0),
categorical features one-hot encoded (the frequent values each a column, the rest and
missing one more) and standardised the same way, and the principal components that explain
a share of the variance (NannyML's default is 65%). A row's error is the Euclidean distance
between its standardised values and their projection back from the kept components. Since
the projection is linear and the components orthonormal, the squared error is
``sum(z_j^2) - sum_c (sum_j W_cj z_j)^2``: a polynomial in the row's values, so the engine
computes a window's mean error as plain SQL over the columns, in one scan
(``standardised_sql``, then ``error_sql`` over them). The squared error is also the sum of
the squared projections on the components left out (all of them together are a basis), so
when fewer are left out than kept those are stored instead (``complement``): the engine's
work per row is the smaller number of projections, and no difference of large sums.

The components are fitted on half of the sample and the reference's level (the mean row
error, its per-row spread, and the spread of its chunks' means beyond sampling error) is
measured on the other half, so the level is not flattered by the fit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

Array = np.ndarray[Any, np.dtype[np.float64]]

VARIANCE_SHARE = 0.65  # the share of the variance the kept components explain
MIN_SHARE = 0.01  # a categorical value rarer than this among the sample joins "the rest"
MAX_VALUES = 10  # one-hot columns per categorical feature, at most (then "the rest")
CHUNKS = 20  # the held-out half is cut into this many chunks (in the order given)
BAND = 3.0  # a window's mean error is drifted beyond this many standard errors


@dataclass(frozen=True)
class Encoded:
    """One column of the standardised matrix: a numeric feature, or one indicator of a
    categorical feature (``value`` None: the rest, missing included)."""

    feature: str
    kind: str  # numeric or categorical
    value: str | None
    mean: float
    scale: float


@dataclass(frozen=True)
class Reconstruction:
    columns: tuple[Encoded, ...]
    components: tuple[tuple[float, ...], ...]  # orthonormal rows: kept, or left out
    share: float  # the variance share asked for
    explained: float  # the share the kept components explain
    mean: float  # the reference's mean row error (held out)
    spread: float  # the standard deviation of a row's error around it
    chunk_spread: float  # between chunks of the reference, beyond sampling error
    rows: int  # held-out rows the level was measured on
    complement: bool = False  # components are those left out: the error is their projection
    kept: int = 0  # the components the variance share keeps

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.feature for c in self.columns))

    def standard_error(self, n: int) -> float:
        """The spread of a window's mean error at ``n`` rows: sampling plus the reference's
        own window-to-window spread."""
        return float(np.sqrt(self.spread**2 / max(n, 1) + self.chunk_spread**2))

    def to_json(self) -> dict[str, Any]:
        return {
            "columns": [[c.feature, c.kind, c.value, c.mean, c.scale] for c in self.columns],
            "components": [list(r) for r in self.components],
            "share": self.share,
            "explained": self.explained,
            "mean": self.mean,
            "spread": self.spread,
            "chunk_spread": self.chunk_spread,
            "rows": self.rows,
            "complement": self.complement,
            "kept": self.kept,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Reconstruction:
        return cls(
            tuple(Encoded(f, k, v, float(m), float(s)) for f, k, v, m, s in data["columns"]),
            tuple(tuple(float(x) for x in r) for r in data["components"]),
            float(data["share"]),
            float(data["explained"]),
            float(data["mean"]),
            float(data["spread"]),
            float(data["chunk_spread"]),
            int(data["rows"]),
            bool(data.get("complement", False)),
            int(data.get("kept", len(data["components"]))),
        )

    def matrix(self, data: Mapping[str, Sequence[Any]]) -> Array:
        """The standardised rows of ``data`` (feature → values, None for missing)."""
        out = []
        for c in self.columns:
            if c.kind == "numeric":
                x = _floats(data[c.feature])
                x = np.where(np.isnan(x), c.mean, x)
            else:
                x = _indicator(data[c.feature], c, self._kept.get(c.feature, frozenset()))
            out.append((x - c.mean) / c.scale)
        return np.column_stack(out) if out else np.zeros((0, 0))

    @cached_property
    def _kept(self) -> dict[str, frozenset[str]]:
        kept: dict[str, set[str]] = {}
        for c in self.columns:
            if c.value is not None:
                kept.setdefault(c.feature, set()).add(c.value)
        return {f: frozenset(v) for f, v in kept.items()}

    def errors(self, data: Mapping[str, Sequence[Any]]) -> Array:
        """Each row's reconstruction error (exactly what ``sql`` computes in the engine)."""
        return _errors(self.matrix(data), np.array(self.components, dtype=float), self.complement)

    def standardised_sql(
        self, column: Callable[[str], str], text: Callable[[str], str]
    ) -> list[str]:
        """Each standardised column of a row as SQL: ``column(name)`` is a feature's quoted
        reference and ``text(value)`` escapes a string literal's body."""
        z = []
        kept = self._kept
        for c in self.columns:
            x = column(c.feature)
            if c.kind == "numeric":
                value = f"COALESCE(CAST({x} AS DOUBLE), {_lit(c.mean)})"
            else:
                s = f"CAST({x} AS STRING)"
                if c.value is not None:
                    value = f"(CASE WHEN {s} = '{text(c.value)}' THEN 1E0 ELSE 0E0 END)"
                else:
                    known = ", ".join(f"'{text(v)}'" for v in sorted(kept.get(c.feature, ())))
                    inside = f"{s} IN ({known})" if known else "FALSE"
                    value = f"(CASE WHEN {s} IS NOT NULL AND {inside} THEN 0E0 ELSE 1E0 END)"
            z.append(f"(({value} - {_lit(c.mean)}) / {_lit(c.scale)})")
        return z

    def error_sql(self, z: Sequence[str]) -> str:
        """A row's error as SQL over its standardised columns ``z`` (names or expressions,
        in the order of ``columns``): what ``errors`` computes."""
        projections = []
        for row in self.components:
            terms = " + ".join(f"{_lit(w)} * {v}" for w, v in zip(row, z, strict=True) if w != 0.0)
            p = f"({terms or '0E0'})"
            projections.append(f"{p} * {p}")
        projected = " + ".join(projections) or "0E0"
        if self.complement:
            return f"SQRT({projected})"
        square = " + ".join(f"{v} * {v}" for v in z)
        return f"SQRT(GREATEST(({square}) - ({projected}), 0E0))"


@dataclass(frozen=True)
class Verdict:
    """A window's mean error judged against the reference's level at the window's size."""

    mean: float
    lower: float  # the 95% interval of the window's mean (sampling)
    upper: float
    low: float  # the band: the reference's mean ± BAND standard errors at this size
    high: float
    change: float  # relative to the reference's mean
    drifted: bool

    def describe(self, reference: float) -> str:
        way = "above" if self.mean > self.high else "below" if self.mean < self.low else "inside"
        return (
            f"mean error {self.mean:.4g} ({self.change:+.1%} on the reference's {reference:.4g}), "
            f"{way} the band {self.low:.4g} to {self.high:.4g}"
        )


def judge(fitted: Reconstruction, rows: int, mean: float, std: float, min_change: float) -> Verdict:
    """Drifted when the window's mean error is outside the reference's band at its size
    (its own spread of windows included) and moved at least ``min_change`` of it."""
    half = BAND * fitted.standard_error(rows)
    margin = 1.96 * (std if np.isfinite(std) else fitted.spread) / np.sqrt(max(rows, 1))
    change = mean / fitted.mean - 1 if fitted.mean > 0 else 0.0
    outside = abs(mean - fitted.mean) > half
    return Verdict(
        mean,
        mean - margin,
        mean + margin,
        fitted.mean - half,
        fitted.mean + half,
        change,
        bool(outside and abs(change) >= min_change),
    )


def _lit(x: float) -> str:
    """A double literal in SQL: in exponent form, which Spark reads as a double (it reads
    0.25 as a decimal, and decimal division rounds to six places)."""
    return f"{float(x):.17E}"


def _indicator(values: Sequence[Any], c: Encoded, kept: frozenset[str]) -> Array:
    text = [None if v is None else _text(v) for v in values]
    if c.value is not None:
        return np.array([1.0 if t == c.value else 0.0 for t in text])
    return np.array([0.0 if t is not None and t in kept else 1.0 for t in text])


def _text(value: Any) -> str:
    """A value as the engine casts it to a string (booleans as true/false)."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    return str(value)


def _floats(values: Sequence[Any]) -> Array:
    """Numbers as floats, None as NaN (a float array is taken as it is)."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        return values.astype(float, copy=False)
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def _errors(z: Array, components: Array, complement: bool = False) -> Array:
    projected = z @ components.T if len(components) else np.zeros((len(z), 0))
    inside = (projected * projected).sum(axis=1)
    if not complement:
        inside = np.maximum((z * z).sum(axis=1) - inside, 0.0)
    return np.asarray(np.sqrt(inside))


def fit(
    data: Mapping[str, Sequence[Any]],
    kinds: Mapping[str, str],
    share: float = VARIANCE_SHARE,
) -> Reconstruction | None:
    """Fit on the sample ``data`` (feature → values, in the reference's time order) with
    ``kinds`` (feature → numeric or categorical): components on the even rows, the level on
    the odd ones. None when there are fewer than two features or too few rows to fit."""
    # A feature with no value in the sample (a column the reference lacks) tells nothing.
    names = [f for f in kinds if f in data and not _empty(data[f])]
    n = len(data[names[0]]) if names else 0
    if len(names) < 2 or n < 4 * CHUNKS:
        return None
    fit_half = {f: data[f][0::2] for f in names}
    held = {f: data[f][1::2] for f in names}
    columns: list[Encoded] = []
    for f in names:
        if kinds[f] == "numeric":
            x = _floats(fit_half[f])
            mean = float(np.nanmean(x)) if np.isfinite(x).any() else 0.0
            x = np.where(np.isnan(x), mean, x)
            columns.append(Encoded(f, "numeric", None, mean, _scale(x)))
            continue
        text = [None if v is None else _text(v) for v in fit_half[f]]
        present = [t for t in text if t is not None]
        values, counts = np.unique(np.array(present, dtype=object), return_counts=True)
        order = sorted(zip(values.tolist(), counts.tolist(), strict=True), key=lambda p: -p[1])
        frequent = [v for v, c in order if c >= MIN_SHARE * len(text)][:MAX_VALUES]
        kept = frozenset(frequent)
        for value in [*frequent, None]:
            probe = Encoded(f, "categorical", value, 0.0, 1.0)
            x = _indicator(text, probe, kept)
            columns.append(Encoded(f, "categorical", value, float(x.mean()), _scale(x)))
    unfitted = Reconstruction(tuple(columns), (), share, 0.0, 0.0, 0.0, 0.0, 0)
    z = unfitted.matrix(fit_half)
    _, s, vt = np.linalg.svd(z - z.mean(axis=0), full_matrices=False)
    variance = s**2
    ratio = np.cumsum(variance) / variance.sum() if variance.sum() > 0 else np.ones(len(s))
    # as scikit-learn's PCA(n_components=share) chooses
    k = min(int(np.searchsorted(ratio, share, side="right")) + 1, len(s))
    components = vt[:k]
    errors = _errors(unfitted.matrix(held), components)
    # All of vt is a basis when there are at least as many rows as columns.
    complement = vt.shape[0] == z.shape[1] and vt.shape[0] - k < k
    stored = vt[k:] if complement else components
    m = len(errors) // CHUNKS
    means = errors[: m * CHUNKS].reshape(CHUNKS, m).mean(axis=1)
    spread = float(errors.std(ddof=1))
    between = float(means.var(ddof=1)) - spread**2 / m
    return Reconstruction(
        tuple(columns),
        tuple(tuple(float(w) for w in row) for row in stored),
        share,
        float(ratio[k - 1]),
        float(errors.mean()),
        spread,
        float(np.sqrt(max(between, 0.0))),
        len(errors),
        complement,
        k,
    )


def _empty(values: Sequence[Any]) -> bool:
    """No value at all (None, or NaN in a float array)."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        return not bool(np.isfinite(values).any())
    return all(v is None for v in values)


def _scale(x: Array) -> float:
    """The standard deviation (as scikit-learn's StandardScaler: 1 for a constant column)."""
    s = float(x.std())
    return s if s > 1e-12 else 1.0


__all__ = ["BAND", "VARIANCE_SHARE", "Encoded", "Reconstruction", "Verdict", "fit", "judge"]
