"""Reconstruction drift's fit and row errors: scikit-learn's PCA on exact data, and what it
sees that no single feature shows (the same error in the engine's SQL is tested in
tests/integration/test_reconstruction.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from tests.helpers import correlated
from watchkeeper.stats.reconstruction import fit


def test_the_errors_equal_scikit_learns_pca_reconstruction() -> None:
    rng = np.random.default_rng(3)
    data = correlated(rng, 4_000, 0.8)
    fitted = fit(data, dict.fromkeys(data, "numeric"))
    assert fitted is not None
    x = np.column_stack([data[f] for f in data])
    scaler = StandardScaler().fit(x[0::2])
    pca = PCA(n_components=0.65, svd_solver="full").fit(scaler.transform(x[0::2]))
    held = scaler.transform(x[1::2])
    expected = np.linalg.norm(held - pca.inverse_transform(pca.transform(held)), axis=1)
    assert fitted.kept == pca.n_components_
    np.testing.assert_allclose(fitted.explained, pca.explained_variance_ratio_.sum(), rtol=1e-9)
    held_data = {f: v[1::2] for f, v in data.items()}
    np.testing.assert_allclose(fitted.errors(held_data), expected, rtol=1e-9, atol=1e-9)
    assert fitted.mean == pytest.approx(expected.mean(), rel=1e-9)
    assert fitted.spread == pytest.approx(expected.std(ddof=1), rel=1e-9)


def test_keeping_most_components_stores_those_left_out_and_errs_the_same() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3_000, 8)) * np.arange(1, 9)
    data = {f"x{j}": x[:, j] for j in range(8)}
    fitted = fit(data, dict.fromkeys(data, "numeric"), share=0.9)
    assert fitted is not None and fitted.complement
    assert len(fitted.components) == 8 - fitted.kept < fitted.kept
    scaler = StandardScaler().fit(x[0::2])
    pca = PCA(n_components=0.9, svd_solver="full").fit(scaler.transform(x[0::2]))
    held = scaler.transform(x[1::2])
    expected = np.linalg.norm(held - pca.inverse_transform(pca.transform(held)), axis=1)
    assert fitted.kept == pca.n_components_
    held_data = {f: v[1::2] for f, v in data.items()}
    np.testing.assert_allclose(fitted.errors(held_data), expected, rtol=1e-9, atol=1e-9)


def test_a_change_of_correlation_with_the_same_marginals_raises_the_error() -> None:
    rng = np.random.default_rng(11)
    fitted = fit(correlated(rng, 20_000, 0.8), dict.fromkeys(correlated(rng, 1, 0), "numeric"))
    assert fitted is not None
    n = 2_000
    calm = [fitted.errors(correlated(rng, n, 0.8)).mean() for _ in range(50)]
    z_calm = [(m - fitted.mean) / fitted.standard_error(n) for m in calm]
    assert sum(abs(z) > 3 for z in z_calm) <= 2
    broken = fitted.errors(correlated(rng, n, 0.2)).mean()
    assert (broken - fitted.mean) / fitted.standard_error(n) > 10
    assert broken / fitted.mean - 1 > 0.2


def test_a_new_combination_of_categories_raises_the_error() -> None:
    rng = np.random.default_rng(13)

    def draw(n: int, mixed: float) -> dict[str, list[Any]]:
        country = rng.choice(["fr", "de"], size=n)
        # In training a French customer pays in euros, a German one too; a planted change
        # sends French customers' payments in another currency while each column keeps
        # its shares.
        currency = np.where(country == "fr", "eur", "chf")
        swap = rng.random(n) < mixed
        currency = np.where(swap, np.where(currency == "eur", "chf", "eur"), currency)
        amount = rng.normal(size=n)
        return {"country": country.tolist(), "currency": currency.tolist(), "a": amount.tolist()}

    kinds = {"country": "categorical", "currency": "categorical", "a": "numeric"}
    fitted = fit(draw(10_000, 0.02), kinds)
    assert fitted is not None
    n = 2_000
    calm = (fitted.errors(draw(n, 0.02)).mean() - fitted.mean) / fitted.standard_error(n)
    changed = (fitted.errors(draw(n, 0.5)).mean() - fitted.mean) / fitted.standard_error(n)
    assert abs(calm) < 3
    assert changed > 10


def test_nothing_is_fitted_for_one_feature_or_a_handful_of_rows() -> None:
    rng = np.random.default_rng(1)
    data = correlated(rng, 1_000, 0.5)
    assert fit({"x0": data["x0"]}, {"x0": "numeric"}) is None
    assert fit({f: v[:20] for f, v in data.items()}, dict.fromkeys(data, "numeric")) is None
