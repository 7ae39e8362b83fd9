"""Another site's page in headless Chromium tries to teach a keyless server on loopback (what
``make run`` and ``make teach`` start) a voice, as a drive-by would: a multipart upload and a
``text/plain`` POST /train by ``fetch`` (no preflight), and a form posted into a frame. The store
stays empty. The same script run by the server's own page, through the page's own api.js, does
enrol: the defence, not the script, is what stops it. A page reaching the server under a name of
its own (DNS rebinding) cannot even load.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.support import chromium, running_server
from tests.helpers import MODEL_DIR

pytestmark = pytest.mark.browser

EVIL_NAME = "evil.example"  # resolved to 127.0.0.1 by Chromium alone (--host-resolver-rules)
WAIT_S = 30.0
# Sends its requests, then sets the title: "sent" once the fetches settled and the form's frame
# loaded. ``SERVER`` and ``CLIP`` (base64 WAV) are filled in.
ATTACK = """<!doctype html><title>cat pictures</title>
<form id="f" method="post" enctype="multipart/form-data" target="sink"
      action="SERVER/speakers/Mallory/clips"><input id="i" type="file" name="files"></form>
<iframe name="sink" id="sink"></iframe>
<script>
const wav = Uint8Array.from(atob("CLIP"), (c) => c.charCodeAt(0));
const clip = (i) => new File([wav], `${i}.wav`, { type: "audio/wav" });
const form = new FormData();
for (let i = 0; i < 4; i++) form.append("files", clip(i));
const quiet = { mode: "no-cors", credentials: "include" };
Promise.allSettled([
  fetch("SERVER/speakers/Mallory/clips", { method: "POST", body: form, ...quiet }),
  fetch("SERVER/train", { method: "POST", body: "{}", ...quiet }),
]).then(() => {
  const files = new DataTransfer();
  files.items.add(clip(9));
  document.getElementById("i").files = files.files;
  document.getElementById("sink").onload = () => { document.title = "sent"; };
  document.getElementById("f").submit();
});
</script>"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A keyless server on loopback, as ``make run`` starts it; its URL and speaker store."""
    store = tmp_path_factory.mktemp("store") / "speakers"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEID_")}
    env |= {"VOICEID_MODEL_DIR": str(MODEL_DIR), "VOICEID_DATA_DIR": str(store)}
    with running_server(env, tmp_path_factory.mktemp("server") / "uvicorn.log") as url:
        yield url, store


@pytest.fixture(scope="module")
def evil_site(server: tuple[str, Path], demo_clips: dict[str, list[bytes]]) -> Iterator[int]:
    """The attacker's page, served on another loopback port; that port."""
    clip = base64.b64encode(demo_clips["Stranger"][0]).decode()
    page = ATTACK.replace("SERVER", server[0]).replace("CLIP", clip).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    yield site.server_address[1]
    site.shutdown()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory, steve_wav: bytes) -> Iterator[WebDriver]:
    microphone = tmp_path_factory.mktemp("mic") / "steve.wav"
    microphone.write_bytes(steve_wav)
    rules = f"--host-resolver-rules=MAP {EVIL_NAME} 127.0.0.1"
    with chromium(microphone, loop=False, flags=(rules,)) as driver:
        yield driver


def _speakers(url: str) -> list[dict[str, object]]:
    with urllib.request.urlopen(f"{url}/speakers", timeout=10) as response:  # no Origin: curl
        speakers: list[dict[str, object]] = json.load(response)["speakers"]
    return speakers


@pytest.mark.parametrize("site", ["127.0.0.1", EVIL_NAME], ids=["another port", "another site"])
def test_another_sites_page_cannot_enrol_a_voice(
    server: tuple[str, Path], evil_site: int, browser: WebDriver, site: str
) -> None:
    url, store = server

    browser.get(f"http://{site}:{evil_site}/")
    WebDriverWait(browser, WAIT_S).until(lambda d: d.title == "sent")

    assert [s["name"] for s in _speakers(url) if s["in_store"]] == []
    assert not store.exists()  # no clip, no training job


def test_a_page_under_a_name_of_its_own_cannot_load(
    server: tuple[str, Path], browser: WebDriver
) -> None:
    port = server[0].rsplit(":", 1)[1]

    browser.get(f"http://{EVIL_NAME}:{port}/")

    assert f"Host '{EVIL_NAME}:{port}' is not a name this server answers to" in (
        browser.page_source
    )


def test_the_servers_own_page_enrols_the_same_way(
    server: tuple[str, Path], browser: WebDriver, demo_clips: dict[str, list[bytes]]
) -> None:
    url = server[0]
    browser.get(url)
    clips = [base64.b64encode(clip).decode() for clip in demo_clips["Stranger"]]
    enrol = """const [clips, done] = arguments;
    const form = new FormData();
    clips.forEach((clip, i) => {
      const wav = Uint8Array.from(atob(clip), (c) => c.charCodeAt(0));
      form.append("files", new File([wav], `${i}.wav`, { type: "audio/wav" }));
    });
    import("/static/api.js").then(({ api }) =>
      api("/speakers/Mallory/clips", { method: "POST", body: form }))
      .then(() => done("enrolled"), (error) => done(String(error)));"""

    outcome = browser.execute_async_script(enrol, clips)

    assert outcome == "enrolled"
    assert [(s["name"], s["clips"]) for s in _speakers(url) if s["in_store"]] == [("Mallory", 3)]
