"""The API key: when set, required on /predict*, /model*, /admin/*, /speakers*, /train*, /models*
and /metrics, before any body is read; /health, /ready and the page stay open. Without a key,
writes are taken on loopback only."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from service.auth import is_loopback, is_write, needs_key
from service.settings import Settings
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


# --- the speaker store, training and versions; writes without a key ------------------------------

OFF_LOOPBACK = (
    "changes (enrolling, training, activating, reloading) need an API key on a server that is "
    "not on loopback, and {why}: set VOICEID_API_KEY and send it in the X-API-Key header, or "
    "serve on 127.0.0.1"
)
WRITES = [("POST", "/speakers/Zoë/clips"), ("DELETE", "/speakers/Zoë"),
          ("DELETE", "/speakers/Zoë/clips/0123456789abcdef"), ("POST", "/train"),
          ("POST", "/models/v1/activate"), ("POST", "/admin/reload")]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "needed"),
    [("/speakers", True), ("/speakers/Zoë/clips", True), ("/train", True), ("/train/j1", True),
     ("/models", True), ("/models/v1/activate", True), ("/model", True), ("/model/plots", True),
     ("/modelsx", False), ("/speakersx", False), ("/trainer", False), ("/health", False)],
)  # fmt: skip
def test_which_paths_need_the_key(path: str, needed: bool) -> None:
    assert needs_key(path, Settings(api_key=KEY)) is needed


@pytest.mark.parametrize(
    ("method", "path", "write"),
    [*[(m, p, True) for m, p in WRITES], ("GET", "/speakers", False),
     ("GET", "/speakers/Zoë", False), ("HEAD", "/models", False), ("GET", "/train/j1", False),
     ("POST", "/predict", False), ("POST", "/predict/batch", False), ("post", "/train", True)],
)  # fmt: skip
def test_which_requests_are_writes(method: str, path: str, write: bool) -> None:
    assert is_write(method, path) is write


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("::ffff:127.0.0.1", True), ("0.0.0.0", False), ("::", False),
     ("", False), ("192.168.1.4", False), ("example.org", False), ("testserver", False)],
)  # fmt: skip
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_the_store_and_training_need_the_key(guarded: TestClient) -> None:
    for method, path in [("GET", "/speakers"), ("GET", "/speakers/Steve"), *WRITES]:
        response = guarded.request(method, path)
        assert (response.status_code, response.json()) == (401, MISSING), (method, path)

    assert guarded.get("/speakers", headers={"x-api-key": KEY}).status_code == 200


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_writes_without_a_key_off_loopback_are_403(
    make_client: ClientFactory, method: str, path: str
) -> None:
    client = make_client(host="0.0.0.0")

    response = client.request(method, path)

    assert response.status_code == 403
    assert response.json() == {"detail": OFF_LOOPBACK.format(why="it listens on '0.0.0.0'")}


def test_a_connection_off_loopback_cannot_write_without_a_key(
    make_client: ClientFactory, steve_wav: bytes
) -> None:
    client = make_client()  # settings.host is 127.0.0.1, but the connection comes in elsewhere
    client.base_url = client.base_url.copy_with(host="192.0.2.7")
    named = {"host": "127.0.0.1"}  # a name it answers to: tests.security.test_sites has others

    refused = client.delete("/speakers/Steve", headers=named)
    answered = client.post("/predict", content=steve_wav,
                           headers={"content-type": "audio/wav", **named})  # fmt: skip

    assert refused.status_code == 403
    assert refused.json() == {
        "detail": OFF_LOOPBACK.format(why="this connection came in on '192.0.2.7'")
    }
    assert answered.status_code == 200


def test_reads_and_predictions_need_no_key_off_loopback(
    make_client: ClientFactory, steve_wav: bytes
) -> None:
    client = make_client(host="0.0.0.0")

    assert client.get("/speakers").status_code == 200
    assert predict(client, steve_wav, {})[0] == 200


def test_with_the_key_writes_are_taken_anywhere(
    make_client: ClientFactory, demo_clips: dict[str, list[bytes]]
) -> None:
    client = make_client(host="0.0.0.0", api_key=KEY)
    files = [("files", ("a.wav", demo_clips["Stranger"][0], "audio/wav"))]

    response = client.post("/speakers/Zoë/clips", files=files, headers={"x-api-key": KEY})

    assert response.status_code == 200


def test_a_refused_write_body_is_not_read(make_client: ClientFactory) -> None:
    client = make_client(host="0.0.0.0", batch_max_bytes=1024)

    response = client.post("/speakers/Zoë/clips", content=bytes(4096),
                           headers={"content-type": "multipart/form-data; boundary=x"})  # fmt: skip

    assert response.status_code == 403  # not the body limit's 413: the body was never read


def test_the_refusal_is_logged_once_at_start_up(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="voiceid.service"):
        client = make_client(host="0.0.0.0")
        client.post("/admin/reload")
        client.post("/admin/reload")

    refusals = [r.getMessage() for r in caplog.records if "writes without" in r.getMessage()]
    assert refusals == [
        "writes without an API key are refused: "
        + OFF_LOOPBACK.format(why="it listens on '0.0.0.0'")
    ]


@pytest.mark.parametrize("settings", [{}, {"api_key": KEY}, {"host": "::1"},
                                      {"host": "localhost"}])  # fmt: skip
def test_nothing_is_logged_where_writes_are_open_or_keyed(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture, settings: dict[str, str]
) -> None:
    with caplog.at_level(logging.WARNING, logger="voiceid.service"):
        make_client(**settings)

    assert not [r for r in caplog.records if "writes without" in r.getMessage()]
