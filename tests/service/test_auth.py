"""The API key: when set, required on /predict*, /model*, /admin/* and /metrics, before any body
is read; /health, /ready and the page stay open."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.helpers import ClientFactory

KEY = "s3cret-key"
MISSING = {"detail": "missing API key: send it in the X-API-Key header"}
WRONG = {"detail": "wrong API key"}


@pytest.fixture
def guarded(make_client: ClientFactory) -> TestClient:
    return make_client(api_key=KEY)


def predict(client: TestClient, clip: bytes, headers: dict[str, str]) -> tuple[int, object]:
    response = client.post(
        "/predict", content=clip, headers={"content-type": "audio/wav", **headers}
    )
    return response.status_code, response.json()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({}, MISSING), ({"x-api-key": ""}, MISSING), ({"authorization": "Basic czNjcmV0"}, MISSING),
     ({"authorization": "Bearer"}, MISSING), ({"x-api-key": "s3cret"}, WRONG),
     ({"x-api-key": KEY + "x"}, WRONG), ({"authorization": "Bearer nope"}, WRONG),
     ({"x-api-key": "wrong", "authorization": f"Bearer {KEY}"}, WRONG)],
    ids=["none", "empty", "basic auth", "empty bearer", "prefix", "longer", "wrong bearer",
         "x-api-key first"],
)  # fmt: skip
def test_missing_or_wrong_key_is_401(
    guarded: TestClient, steve_wav: bytes, headers: dict[str, str], expected: object
) -> None:
    response = guarded.post("/predict", content=steve_wav,
                            headers={"content-type": "audio/wav", **headers})  # fmt: skip

    assert response.status_code == 401
    assert response.json() == expected
    assert response.headers["www-authenticate"] == "ApiKey"


@pytest.mark.parametrize(
    "headers",
    [{"x-api-key": KEY}, {"authorization": f"Bearer {KEY}"}, {"authorization": f"bearer  {KEY} "}],
    ids=["x-api-key", "bearer", "bearer, any case and spacing"],
)
def test_right_key_is_let_through(
    guarded: TestClient, steve_wav: bytes, headers: dict[str, str]
) -> None:
    status, answer = predict(guarded, steve_wav, headers)

    assert status == 200
    assert isinstance(answer, dict) and answer["speaker"] in ("Steve", "unknown")


def test_batch_and_reload_need_the_key(guarded: TestClient, steve_wav: bytes) -> None:
    files = [("files", ("a.wav", steve_wav, "audio/wav"))]

    batch = guarded.post("/predict/batch", files=files)
    reload = guarded.post("/admin/reload")
    keyed_batch = guarded.post("/predict/batch", files=files, headers={"x-api-key": KEY})
    keyed_reload = guarded.post("/admin/reload", headers={"authorization": f"Bearer {KEY}"})

    assert (batch.status_code, batch.json()) == (401, MISSING)
    assert (reload.status_code, reload.json()) == (401, MISSING)
    assert keyed_batch.status_code == 200
    assert keyed_reload.status_code == 200


@pytest.mark.parametrize("path", ["/health", "/ready", "/"])
def test_probes_and_the_page_are_open(guarded: TestClient, path: str) -> None:
    assert guarded.get(path).status_code == 200


@pytest.mark.parametrize(
    "path", ["/model", "/model/plots/training_curves.png", "/metrics", "/admin/reload"]
)
def test_model_management_and_metrics_need_the_key(guarded: TestClient, path: str) -> None:
    refused = guarded.request("POST" if path.startswith("/admin") else "GET", path)
    allowed = guarded.request(
        "POST" if path.startswith("/admin") else "GET", path, headers={"x-api-key": KEY}
    )

    assert (refused.status_code, refused.json()) == (401, MISSING)
    assert allowed.status_code == 200


def test_metrics_can_be_made_public(make_client: ClientFactory) -> None:
    client = make_client(api_key=KEY, metrics_public=True)

    assert client.get("/metrics").status_code == 200
    assert client.get("/model").status_code == 401


def test_reload_refuses_a_big_body_without_parsing_it(make_client: ClientFactory) -> None:
    client = make_client(api_key=KEY)
    body = b'{"model_dir": "' + b"x" * 50_000 + b'"}'

    response = client.post(
        "/admin/reload", content=body, headers={"content-type": "application/json"}
    )

    assert (response.status_code, response.json()) == (401, MISSING)


def test_key_is_checked_before_the_upload_is_read(make_client: ClientFactory) -> None:
    client = make_client(api_key=KEY, max_upload_bytes=1024)

    response = client.post("/predict", content=bytes(4096), headers={"content-type": "audio/wav"})

    assert (response.status_code, response.json()) == (401, MISSING)


def test_without_a_key_configured_none_is_needed(client: TestClient, steve_wav: bytes) -> None:
    status, _ = predict(client, steve_wav, {"x-api-key": "anything"})

    assert status == 200
