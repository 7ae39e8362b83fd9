"""Property-based tests of the API from its OpenAPI schema: no 5xx, responses as documented."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.app import create_app
from service.settings import Settings
from tests.helpers import MODEL_DIR

pytestmark = pytest.mark.slow  # about 150 generated requests

STORE = tempfile.TemporaryDirectory(prefix="voiceid-schemathesis-")  # removed at exit
# schemathesis calls the app as http://testserver: a name the app answers to only when told.
APP = create_app(Settings(model_dir=MODEL_DIR, data_dir=Path(STORE.name) / "speakers",
                          allowed_hosts=("testserver",)))  # fmt: skip
# What `from_asgi` does, minus its request for the schema: that would start the app's lifespan,
# and so load the model, while pytest is only collecting tests. Each test case starts it instead.
schema = schemathesis.openapi.from_dict(APP.openapi())
schema.app = APP
# A WAV body is bytes like any other; schemathesis only knows that by this name.
schemathesis.serializer.alias("audio/wav", "application/octet-stream")

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]  # fmt: skip


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate(checks=CHECKS)
