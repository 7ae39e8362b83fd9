"""POST /admin/reload: same bundle, a new one, broken ones, and reloads under load."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from pipeline.bundle import Bundle, load_bundle, sha256_file
from service.app import create_app
from service.settings import Settings
from tests.helpers import MODEL_DIR, async_client

WAV = {"content-type": "audio/wav"}


def served_version(client: TestClient) -> str:
    version: str = client.get("/model").json()["version"]
    return version


def test_reload_without_a_body_reloads_the_served_bundle(
    client: TestClient, default_bundle: Bundle
) -> None:
    response = client.post("/admin/reload")

    assert response.status_code == 200
    assert response.json() == client.get("/model").json()
    assert response.json()["version"] == default_bundle.version


@pytest.mark.parametrize("body", [None, {}, {"model_dir": None}], ids=["null", "{}", "null dir"])
def test_reload_with_an_empty_request_keeps_the_path(client: TestClient, body: object) -> None:
    response = client.post(
        "/admin/reload", content=json.dumps(body), headers={"content-type": "application/json"}
    )

    assert response.status_code == 200
    assert response.json()["path"] == MODEL_DIR.name


def test_reload_swaps_in_a_new_bundle(
    client: TestClient, trained_bundle: Path, steve_wav: bytes
) -> None:
    trained = load_bundle(trained_bundle)

    response = client.post("/admin/reload", json={"model_dir": str(trained_bundle)})
    answer = client.post("/predict", content=steve_wav, headers=WAV).json()

    assert response.status_code == 200
    assert response.json()["name"] == "model"
    assert response.json()["version"] == trained.version
    assert client.get("/ready").json()["model"] == {"name": "model", "version": trained.version}
    assert answer["model"] == {"name": "model", "version": trained.version}
    assert answer["threshold"] == trained.threshold
    # The next reload without a body stays on the new path.
    assert client.post("/admin/reload").json()["path"] == trained_bundle.name


def _break(bundle: Path, how: str) -> str:
    """Damage ``bundle`` in one way; return the 409 detail the reload must give."""
    meta_path = bundle / "metadata.json"
    if how == "missing folder":
        missing = bundle.parent / "nowhere"
        return f"model bundle '{missing}' does not exist or is not a folder"
    if how == "no metadata":
        meta_path.unlink()
        return f"'{bundle}' is not a model bundle: metadata.json is missing"
    if how == "metadata not JSON":
        meta_path.write_text("{")
        return (
            f"{meta_path} is not valid JSON: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)"
        )
    meta: dict[str, Any] = json.loads(meta_path.read_text())
    if how == "no labels":
        del meta["labels"]
        meta_path.write_text(json.dumps(meta))
        return f"{meta_path} is inconsistent: lacks labels"
    if how == "three labels":
        meta["labels"] = ["David", "Steve", "Stranger"]
        meta_path.write_text(json.dumps(meta))
        return f"bundle '{bundle}' does not check out: the model has 2 outputs for 3 labels"
    if how == "format version 3":
        meta["format_version"] = 3
        meta_path.write_text(json.dumps(meta))
        return "bundle format version 3 is not supported (this voiceid reads version 2)"
    assert how == "tampered network"
    network = bundle / "network.npz"
    network.write_bytes(network.read_bytes() + b"\0")
    return (
        f"{network} does not match its checksum: sha256 is {sha256_file(network)[:12]}..., "
        f"metadata.json expects {meta['network_sha256'][:12]}..."
    )


BREAKAGES = ["missing folder", "no metadata", "metadata not JSON", "no labels", "three labels",
             "format version 3", "tampered network"]  # fmt: skip


@pytest.mark.parametrize("how", BREAKAGES)
def test_broken_bundle_is_409_and_the_old_model_keeps_serving(
    client: TestClient, bundle_copy: Path, steve_wav: bytes, default_bundle: Bundle, how: str
) -> None:
    detail = _break(bundle_copy, how)
    target = bundle_copy.parent / "nowhere" if how == "missing folder" else bundle_copy

    response = client.post("/admin/reload", json={"model_dir": str(target)})

    assert response.status_code == 409
    assert response.json() == {"detail": detail}
    assert served_version(client) == default_bundle.version
    assert client.get("/ready").status_code == 200
    assert client.post("/predict", content=steve_wav, headers=WAV).status_code == 200


@pytest.mark.parametrize(
    ("model_dir", "reason"),
    [("bad\0path", "embedded null byte"), ("x" * 300, "File name too long")],
    ids=["NUL byte", "long name"],
)
def test_path_the_os_refuses_is_409_not_500(
    client: TestClient, default_bundle: Bundle, model_dir: str, reason: str
) -> None:
    response = client.post("/admin/reload", json={"model_dir": model_dir})

    assert response.status_code == 409
    assert response.json() == {"detail": f"cannot read model bundle {model_dir!r}: {reason}"}
    assert served_version(client) == default_bundle.version


@pytest.mark.parametrize(
    ("body", "loc"),
    [({"model_dir": 5}, ["body", "model_dir"]), ({"path": "x"}, ["body", "path"]), ([], ["body"])],
)
def test_malformed_reload_request_is_422(client: TestClient, body: object, loc: list[str]) -> None:
    response = client.post("/admin/reload", json=body)

    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [loc]


def test_request_in_flight_finishes_on_the_model_it_started_with(
    steve_wav: bytes, trained_bundle: Path, default_bundle: Bundle
) -> None:
    app = create_app(Settings(model_dir=MODEL_DIR, models_root=Path("/")))
    half = len(steve_wav) // 2
    reading = asyncio.Event()  # the route asked for more of the body, so it holds its model
    resume = asyncio.Event()

    async def paused_body() -> AsyncIterator[bytes]:
        yield steve_wav[:half]
        reading.set()
        await resume.wait()
        yield steve_wav[half:]

    async def scenario() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        async with async_client(app) as client:
            in_flight = asyncio.create_task(
                client.post("/predict", content=paused_body(), headers=WAV)
            )
            await reading.wait()
            reload = await client.post("/admin/reload", json={"model_dir": str(trained_bundle)})
            resume.set()
            after = await client.post("/predict", content=steve_wav, headers=WAV)
            return await in_flight, reload, after

    in_flight, reload, after = asyncio.run(scenario())

    assert reload.status_code == 200
    assert in_flight.status_code == 200
    assert in_flight.json()["model"]["version"] == default_bundle.version
    assert after.json()["model"]["version"] == load_bundle(trained_bundle).version


def test_reloads_while_requests_are_in_flight_fail_none(
    demo_clips: dict[str, list[bytes]], trained_bundle: Path, default_bundle: Bundle
) -> None:
    """50 concurrent predictions race reloads alternating between two bundles; all succeed."""
    app = create_app(Settings(model_dir=MODEL_DIR, models_root=Path("/")))
    clips = [clip for voice_clips in demo_clips.values() for clip in voice_clips]
    targets = itertools.cycle([str(trained_bundle), str(MODEL_DIR)])

    async def predict(client: httpx.AsyncClient, i: int) -> httpx.Response:
        await asyncio.sleep(0.002 * i)  # spread the requests over the reloads
        return await client.post("/predict", content=clips[i % len(clips)], headers=WAV)

    async def reload_until(done: asyncio.Event, client: httpx.AsyncClient) -> list[httpx.Response]:
        responses: list[httpx.Response] = []
        while not done.is_set() or len(responses) < 4:
            responses.append(await client.post("/admin/reload", json={"model_dir": next(targets)}))
        return responses

    async def race() -> tuple[list[httpx.Response], list[httpx.Response]]:
        done = asyncio.Event()
        async with async_client(app) as client:
            reloads = asyncio.create_task(reload_until(done, client))
            predictions = await asyncio.gather(*(predict(client, i) for i in range(50)))
            done.set()
            return list(predictions), await reloads

    predictions, reloads = asyncio.run(race())

    assert [r.status_code for r in reloads] == [200] * len(reloads)
    assert [r.status_code for r in predictions] == [200] * 50
    versions = {r.json()["model"]["version"] for r in predictions}
    assert versions <= {default_bundle.version, load_bundle(trained_bundle).version}
