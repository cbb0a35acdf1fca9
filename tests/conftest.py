"""Shared fixtures. Plain names (configs, ``event``, ``Clock``, ``need`` and the rest) live in
tests/helpers.py: a test imports those from there, and fixtures only from a conftest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import watchkeeper
from tests.helpers import MODEL_YAML, Clock
from watchkeeper.config import Config, parse_config


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return parse_config(MODEL_YAML, base_dir=tmp_path)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ws(config: Config, clock: Clock) -> Iterator[watchkeeper.Workspace]:
    with watchkeeper.Workspace.open(config, clock=clock) as workspace:
        yield workspace


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, watchkeeper.Workspace]]:
    """The demo's sixty days, run once for the tests that read them."""
    from rich.console import Console

    from watchkeeper.demo import run_demo

    folder = tmp_path_factory.mktemp("demo")
    with open(folder / "output.txt", "w") as out:
        ws = run_demo(folder, console=Console(file=out, width=200))
    try:
        yield folder, ws
    finally:
        ws.close()
