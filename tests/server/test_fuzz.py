"""A property-based fuzz run of the OpenAPI spec (schemathesis): whatever a client sends,
the server answers 2xx or 4xx, never 5xx."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from tests.helpers import MODEL_YAML, NOW, SERVER, Clock, with_reference
from watchkeeper.config import parse_config
from watchkeeper.server import create_app


def test_no_input_makes_a_server_error(tmp_path: Path) -> None:
    config = with_reference(parse_config(MODEL_YAML + SERVER, base_dir=tmp_path))
    app = create_app(config, clock=Clock(NOW))
    with TestClient(app):  # the lifespan: the writer and the store are open
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 10
        for operation in operations:
            # Half the cases name a real model, so the fuzz reaches past the 404.
            cases = st.tuples(operation.as_strategy(), st.booleans()).map(_real_model)

            @given(case=cases)
            @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
            def fuzz(case: schemathesis.Case) -> None:
                case.call_and_validate(checks=[not_a_server_error])

            try:
                fuzz()
            except Exception as exc:
                pytest.fail(f"{operation.label}: {exc}")


def _real_model(pair: tuple[schemathesis.Case, bool]) -> schemathesis.Case:
    case, real = pair
    if real and case.path_parameters and "model" in case.path_parameters:
        case.path_parameters["model"] = "fraud"
    if real and isinstance(case.body, dict) and "model" in case.body:
        case.body["model"] = "fraud"
    return case
