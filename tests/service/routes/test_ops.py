"""GET /health, /ready and /metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from pipeline.bundle import Bundle, sha256_file
from tests.helpers import MODEL_DIR, ClientFactory


def metric(text: str, name: str, **labels: str) -> float:
    """The value of sample ``name`` with exactly ``labels`` in a Prometheus page (0 if none)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def test_health_answers_ok_and_names_the_model_being_served(
    client: TestClient, default_bundle: Bundle
) -> None:
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "model": {"name": default_bundle.name, "version": default_bundle.version},
    }


@pytest.mark.parametrize("path", ["/", "/health", "/ready"])
def test_head_answers_as_get_does_without_a_body(client: TestClient, path: str) -> None:
    response = client.head(path)

    assert response.status_code == 200
    assert response.headers["content-type"] == client.get(path).headers["content-type"]
    assert response.content == b""


def test_head_on_ready_is_503_without_a_model(make_client: ClientFactory, tmp_path: Path) -> None:
    client = make_client(model_dir=tmp_path / "missing")

    assert client.head("/ready").status_code == 503
    assert client.head("/health").status_code == 200


def test_ready_names_the_model_being_served(client: TestClient, default_bundle: Bundle) -> None:
    response = client.get("/ready")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "model": {"name": default_bundle.name, "version": default_bundle.version},
    }


def test_app_without_a_loadable_model_starts_and_says_why(
    make_client: ClientFactory, tmp_path: Path, steve_wav: bytes
) -> None:
    missing = tmp_path / "missing"
    client = make_client(model_dir=missing)

    health, ready = client.get("/health"), client.get("/ready")
    predict = client.post("/predict", content=steve_wav, headers={"content-type": "audio/wav"})

    why = {
        "detail": "no model is loaded yet: model bundle 'missing' does not exist or is not a folder"
    }
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "model": None}
    assert ready.status_code == 503
    assert ready.json() == why
    assert predict.status_code == 503
    assert predict.json() == why
    assert client.get("/model").json() == why


def test_app_with_a_tampered_network_starts_and_says_why(
    make_client: ClientFactory, bundle_copy: Path
) -> None:
    model = bundle_copy / "network.npz"
    expected = sha256_file(model)[:12]
    model.write_bytes(model.read_bytes() + b"\0")
    client = make_client(model_dir=bundle_copy)

    response = client.get("/ready")

    assert response.status_code == 503
    assert response.json() == {
        "detail": "no model is loaded yet: copy/network.npz does not match its checksum: sha256 is "
        f"{sha256_file(model)[:12]}..., metadata.json expects {expected}..."
    }


def test_app_given_a_path_the_os_refuses_starts_and_says_why(make_client: ClientFactory) -> None:
    name = "x" * 300  # over the 255 bytes a file name may have
    client = make_client(model_dir=Path(name))

    response = client.get("/ready")

    assert response.status_code == 503
    assert response.json() == {
        "detail": f"no model is loaded yet: cannot read model bundle '{name}': File name too long"
    }


def test_reload_brings_a_model_into_an_app_that_started_without_one(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    client = make_client(model_dir=tmp_path / "missing")

    reload = client.post("/admin/reload", json={"model_dir": str(MODEL_DIR)})

    assert reload.status_code == 200
    assert client.get("/ready").status_code == 200


def test_metrics_count_requests_predictions_and_unknowns(
    make_client: ClientFactory, demo_clips: dict[str, list[bytes]]
) -> None:
    named = make_client(unknown_threshold=0.0)  # every clip gets its best label
    doubtful = make_client(unknown_threshold=1.0)  # no score reaches 1: every clip is unknown
    wav = {"content-type": "audio/wav"}
    for clip in demo_clips["Steve"][:2] + demo_clips["David"][:1]:
        named.post("/predict", content=clip, headers=wav)
    named.post("/predict", content=b"not audio", headers=wav)
    named.get("/health")
    doubtful.post("/predict", content=demo_clips["Stranger"][0], headers=wav)

    page = named.get("/metrics")
    doubtful_page = doubtful.get("/metrics").text

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/plain")
    text = page.text
    requests = "voiceid_requests_total"
    assert metric(text, requests, route="/predict", method="POST", status="200") == 3
    assert metric(text, requests, route="/predict", method="POST", status="415") == 1
    assert metric(text, requests, route="/health", method="GET", status="200") == 1
    assert metric(text, "voiceid_predictions_total", speaker="Steve") == 2
    assert metric(text, "voiceid_predictions_total", speaker="David") == 1
    assert metric(text, "voiceid_unknown_total") == 0
    assert metric(text, "voiceid_request_latency_seconds_count", route="/predict") == 4
    assert metric(doubtful_page, "voiceid_predictions_total", speaker="unknown") == 1
    assert metric(doubtful_page, "voiceid_unknown_total") == 1


def test_metrics_label_unmatched_paths_with_one_value(client: TestClient) -> None:
    client.get("/no/such/path")
    client.get("/another/one")

    text = client.get("/metrics").text

    assert (
        metric(text, "voiceid_requests_total", route="unmatched", method="GET", status="404") == 2
    )
