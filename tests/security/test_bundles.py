"""Bundles are not trusted: only our own format, within size caps, from inside the models root;
and every worker follows a reload."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pipeline.bundle import MAX_METADATA_BYTES, load_bundle, sha256_file
from pipeline.errors import BundleError
from pipeline.network import MAX_NETWORK_BYTES
from service.model_store import ModelStore
from tests.helpers import MODEL_DIR, ClientFactory

ONLY_THERE = "bundles load from there only"


@pytest.fixture
def models_root(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    shutil.copytree(MODEL_DIR, root / "default")
    return root


def test_a_reload_outside_the_models_root_is_403_whether_or_not_the_path_exists(
    make_client: ClientFactory, models_root: Path, tmp_path: Path
) -> None:
    client = make_client(model_dir=models_root / "default", models_root=models_root)
    shutil.copytree(MODEL_DIR, tmp_path / "outside")

    answers = {
        path: client.post("/admin/reload", json={"model_dir": path})
        for path in ("/etc", "/no/such/folder", str(tmp_path / "outside"), "../outside")
    }

    for path, response in answers.items():
        assert (response.status_code, response.json()) == (
            403,
            {"detail": f"model_dir {path!r} is outside the models root: {ONLY_THERE}"},
        )


def test_a_symlink_out_of_the_root_is_403(
    make_client: ClientFactory, models_root: Path, tmp_path: Path
) -> None:
    shutil.copytree(MODEL_DIR, tmp_path / "outside")
    (models_root / "link").symlink_to(tmp_path / "outside")
    client = make_client(model_dir=models_root / "default", models_root=models_root)

    response = client.post("/admin/reload", json={"model_dir": str(models_root / "link")})

    assert response.status_code == 403


def test_a_symlink_loop_is_a_clear_409_and_start_up_stays_up(
    make_client: ClientFactory, models_root: Path
) -> None:
    loop = models_root / "loop"
    loop.symlink_to(loop)
    client = make_client(model_dir=loop, models_root=models_root)

    ready = client.get("/ready")
    reload = client.post("/admin/reload", json={"model_dir": str(loop)})

    assert (ready.status_code, ready.json()) == (
        503,
        {"detail": "no model is loaded yet: cannot read model bundle 'loop': a symbolic link loop"},
    )
    assert (reload.status_code, reload.json()) == (
        409,
        {"detail": f"cannot read model bundle {str(loop)!r}: a symbolic link loop"},
    )


def test_an_oversized_metadata_json_is_refused_unread(tmp_path: Path) -> None:
    bundle = shutil.copytree(MODEL_DIR, tmp_path / "big")
    meta = bundle / "metadata.json"
    meta.write_text(meta.read_text() + " " * MAX_METADATA_BYTES)

    with pytest.raises(BundleError) as caught:
        load_bundle(bundle)

    assert str(caught.value) == (
        f"{meta.resolve()} is {meta.stat().st_size} bytes; a metadata.json is at most 1048576"
    )


def test_a_zip_bomb_network_is_refused_before_decompressing(tmp_path: Path) -> None:
    bundle = shutil.copytree(MODEL_DIR, tmp_path / "bomb")
    network = bundle / "network.npz"
    with zipfile.ZipFile(network, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("padding.npy", bytes(MAX_NETWORK_BYTES))  # 64 MB of zeros: 64 KB packed
    meta = json.loads((bundle / "metadata.json").read_text())

    meta["network_sha256"] = sha256_file(network)
    (bundle / "metadata.json").write_text(json.dumps(meta))

    with pytest.raises(
        BundleError, match=r"holds \d+ bytes of arrays; a network is at most 67108864"
    ):
        load_bundle(bundle)
    assert network.stat().st_size < 1_000_000


def test_serving_never_imports_h5py_or_keras() -> None:
    code = (
        "import sys, pathlib; from service.model_store import _load_and_warm_up; "
        "from service.inference import warm_up; from service.settings import Settings; "
        f"path = pathlib.Path({str(MODEL_DIR)!r}); "
        "_load_and_warm_up(path, lambda b: warm_up(b, Settings(model_dir=path))); "
        "print(sorted(m for m in ('h5py', 'keras', 'tensorflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == "[]"


def test_every_store_sharing_the_active_file_follows_a_reload(
    tmp_path: Path, trained_bundle: Path
) -> None:
    active = tmp_path / "active-model"
    first, second = ModelStore(active), ModelStore(active)

    async def main() -> tuple[str, str]:
        await first.start(MODEL_DIR)
        await second.start(MODEL_DIR)
        await first.load(trained_bundle)
        await second.follow()
        return first.current.version, second.current.version

    versions = asyncio.run(main())

    assert versions == (load_bundle(trained_bundle).version,) * 2
    assert json.loads(active.read_text())["version"] == versions[0]


def test_a_deeply_nested_metadata_json_is_named_as_such(tmp_path: Path) -> None:
    bundle = shutil.copytree(MODEL_DIR, tmp_path / "deep")
    meta = bundle / "metadata.json"
    meta.write_text("[" * 100_000 + "]" * 100_000)

    with pytest.raises(BundleError) as caught:
        load_bundle(bundle)

    assert str(caught.value) == (
        f"{meta.resolve()} is not a metadata.json: its JSON is nested too deeply to read"
    )
