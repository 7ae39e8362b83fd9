"""GET /model and /model/plots/{name}.png."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from pipeline.bundle import Bundle
from pipeline.features import band_centres
from tests.helpers import MODEL_DIR, ClientFactory

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_model_describes_the_served_bundle(client: TestClient, default_bundle: Bundle) -> None:
    response = client.get("/model")

    assert response.status_code == 200
    info = response.json()
    assert info["name"] == default_bundle.name
    assert info["version"] == default_bundle.version
    assert info["path"] == MODEL_DIR.name
    assert info["labels"] == ["David", "Steve"]
    assert info["architecture"] == [60, 6, 2]
    assert info["output_activation"] == "softmax"
    assert info["threshold"] == default_bundle.threshold
    assert info["feature_config"] == default_bundle.feature_config.to_dict()
    assert info["band_centres_hz"] == band_centres(default_bundle.feature_config).tolist()
    assert info["unsure_odds"] == 1.25
    assert info["metrics"] == default_bundle.metadata.metrics.model_dump()
    assert info["created"] == default_bundle.metadata.model_dump(mode="json")["created"]
    assert info["plots"] == {
        "training_curves": f"/model/plots/training_curves.png?v={default_bundle.version}",
        "confusion_matrix": f"/model/plots/confusion_matrix.png?v={default_bundle.version}",
    }


def test_model_serves_the_whole_of_the_bundles_metadata(
    client: TestClient, default_bundle: Bundle
) -> None:
    info = client.get("/model").json()

    metadata = default_bundle.metadata.model_dump(mode="json")
    assert {key: info[key] for key in metadata} == metadata
    assert sorted(set(info) - set(metadata)) == [
        "band_centres_hz", "path", "plots", "unsure_odds", "version", "weights"
    ]  # fmt: skip


def test_a_bundle_without_its_keras_export_serves(
    make_client: ClientFactory, bundle_copy: Path, steve_wav: bytes
) -> None:
    (bundle_copy / "model.keras").unlink()
    client = make_client(model_dir=bundle_copy)

    response = client.post("/predict", content=steve_wav, headers={"content-type": "audio/wav"})

    assert response.status_code == 200
    assert response.json()["speaker"] == "Steve"


def test_model_weights_are_the_networks_arrays(client: TestClient, default_bundle: Bundle) -> None:
    weights = client.get("/model").json()["weights"]
    net = default_bundle.network

    shapes = {name: np.shape(values) for name, values in weights.items()}

    assert shapes == {
        "hidden_kernel": (60, 6),
        "hidden_bias": (6,),
        "output_kernel": (6, 2),
        "output_bias": (2,),
    }
    np.testing.assert_array_equal(weights["hidden_kernel"], net.hidden_kernel)
    np.testing.assert_array_equal(weights["hidden_bias"], net.hidden_bias)
    np.testing.assert_array_equal(weights["output_kernel"], net.output_kernel)
    np.testing.assert_array_equal(weights["output_bias"], net.output_bias)


@pytest.mark.parametrize("name", ["training_curves", "confusion_matrix"])
def test_plot_is_the_bundles_png(client: TestClient, name: str) -> None:
    response = client.get(f"/model/plots/{name}.png")

    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(PNG_SIGNATURE)
    assert response.content == (MODEL_DIR / f"{name}.png").read_bytes()


def test_plot_the_bundle_lacks_is_404(make_client: ClientFactory, bundle_copy: Path) -> None:
    (bundle_copy / "confusion_matrix.png").unlink()
    client = make_client(model_dir=bundle_copy)

    response = client.get("/model/plots/confusion_matrix.png")

    assert response.status_code == 404
    assert response.json() == {"detail": "the bundle has no confusion_matrix.png"}


def test_plot_of_another_name_is_422(client: TestClient) -> None:
    response = client.get("/model/plots/report.png")

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["path", "name"]
    assert error["msg"] == "Input should be 'training_curves' or 'confusion_matrix'"


@pytest.mark.parametrize("path", ["/model/plots/training_curves", "/model/plots/", "/model/x"])
def test_paths_outside_the_api_are_404(client: TestClient, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}
