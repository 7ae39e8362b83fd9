""" "Listen live" in headless Chromium against a real server: the fake microphone plays Steve,
then David, and the page names each, within half a second of the change in stream time; a
server that refuses the stream is told to the person.

Times are the stream's own (each answer's ``t``), never the wall clock, so a loaded machine
cannot make the test flaky. The fake microphone starts playing when the page opens it, a moment
before the page starts sending, so the change is measured from the first hop with speech.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from pipeline.bundle import load_bundle
from pipeline.demo.synth import VOICES, synthesize_hello
from pipeline.features import histogram
from pipeline.predict import predict_features
from tests.browser.support import (
    DESKTOP,
    chromium,
    console_errors,
    running_server,
    save_full_page,
)
from tests.helpers import MODEL_DIR

pytestmark = pytest.mark.browser

API_KEY = "live-test-key"
KEY_STORAGE = "voiceid.apiKey"  # app.js's sessionStorage key
SAMPLE_RATE = 16000
LEAD_S = 1.0  # silence before Steve
TAKES = 4  # "Hello"s per voice
SWITCH_WITHIN_S = 0.5  # the goal: the name follows the voice within this much stream time
TIMEOUT_S = 60.0
RELEASE_TIMEOUT_S = 10.0  # for a microphone to be opened and released again
TAKE_SEEDS = range(7, 15)  # the default model was trained on seed 0's clips


@dataclass(frozen=True)
class Microphone:
    path: Path
    change_s: float  # seconds from Steve's first sound to David's
    end_s: float  # seconds of the file


def _onset(take: np.ndarray) -> int:
    """The first sample of ``take`` above 2% of its peak: where its voice starts."""
    return int(np.flatnonzero(np.abs(take) > 0.02 * np.abs(take).max())[0])


def _takes(name: str) -> list[np.ndarray]:
    """The ``TAKES`` clearest "Hello"s of ``name`` (each with its own short pauses)."""
    bundle = load_bundle(MODEL_DIR)
    takes = [synthesize_hello(VOICES[name], np.random.default_rng(s), SAMPLE_RATE)
             for s in TAKE_SEEDS]  # fmt: skip
    takes.sort(key=lambda t: -predict_features(bundle, histogram(t, bundle.feature_config))[0]
               .scores[name])  # fmt: skip
    return takes[:TAKES]


@pytest.fixture(scope="module")
def microphone(tmp_path_factory: pytest.TempPathFactory) -> Microphone:
    steve, david = _takes("Steve"), _takes("David")
    lead = np.zeros(round(LEAD_S * SAMPLE_RATE), np.float32)
    y = np.concatenate([lead, *steve, *david, lead])
    path = tmp_path_factory.mktemp("live") / "steve_then_david.wav"
    sf.write(path, y, SAMPLE_RATE, subtype="PCM_16")
    change = sum(map(len, steve)) + _onset(david[0]) - _onset(steve[0])
    return Microphone(path, change / SAMPLE_RATE, len(y) / SAMPLE_RATE)


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {**os.environ, "VOICEID_MODEL_DIR": str(MODEL_DIR), "VOICEID_API_KEY": API_KEY,
           "VOICEID_LOG_LEVEL": "warning"}  # fmt: skip
    with running_server(env, tmp_path_factory.mktemp("server") / "uvicorn.log") as url:
        yield url


@pytest.fixture
def driver(microphone: Microphone) -> Iterator[WebDriver]:
    with chromium(microphone.path, loop=False) as browser:  # from when the page opens it
        yield browser


def open_page(driver: WebDriver, url: str, api_key: str | None) -> None:
    driver.get(f"{url}/")
    if api_key is None:
        driver.execute_script("sessionStorage.clear()")
    else:
        driver.execute_script(f"sessionStorage.setItem('{KEY_STORAGE}', arguments[0])", api_key)
    driver.refresh()
    WebDriverWait(driver, TIMEOUT_S).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#labels li") or d.find_element(
            By.ID, "api-key").is_displayed()
    )  # fmt: skip
    driver.get_log("browser")  # type: ignore[no-untyped-call]  # each test's console from here


# Counts the changes of the live name's text in window.nameChanges.
COUNT_NAME_CHANGES = """window.nameChanges = 0;
new MutationObserver((records) => (window.nameChanges += records.length)).observe(
  document.getElementById("live-name"), { childList: true, characterData: true, subtree: true });"""


def timeline(driver: WebDriver) -> list[tuple[float, str]]:
    """Every hop the timeline shows, as (t, speaker or "" for silence), read in one script."""
    script = """return [...document.querySelectorAll('#live-timeline rect[data-t]')]
        .map((r) => [Number(r.dataset.t), r.dataset.speaker])"""
    return [(float(t), str(s)) for t, s in driver.execute_script(script)]


def test_the_name_follows_steve_then_david_within_half_a_second(
    driver: WebDriver, server_url: str, microphone: Microphone
) -> None:
    open_page(driver, server_url, API_KEY)
    driver.execute_script(COUNT_NAME_CHANGES)
    driver.find_element(By.ID, "listen").click()
    # Until the stream time passes the end of David, then the stream is stopped.
    WebDriverWait(driver, TIMEOUT_S).until(
        lambda d: (
            ((hops := timeline(d)) and hops[-1][0] > microphone.end_s - LEAD_S)
            or d.find_element(By.ID, "live-error").text
        )
    )
    name = driver.find_element(By.ID, "live-name").text
    driver.find_element(By.ID, "listen").click()
    save_full_page(driver, "live", DESKTOP)
    assert driver.find_element(By.ID, "live-error").text == ""

    hops = timeline(driver)
    first_sound = next(t for t, s in hops if s)  # Steve's first sound, in stream time
    first_david = next(t for t, s in hops if s == "David")
    assert "Steve" in {s for t, s in hops if t < first_david}
    assert abs((first_david - first_sound) - microphone.change_s) <= SWITCH_WITHIN_S, hops
    assert "David" not in {s for t, s in hops if t < first_sound + microphone.change_s - 0.5}
    assert "Steve" not in {s for t, s in hops if t > first_sound + microphone.change_s + 0.5}
    assert name in ("David", "unknown")  # the last voice heard (or its fading tail)
    # The name is a live region: it changes (and is read out) only when the voice does.
    voices = [s for _, s in hops if s]
    changes = 1 + sum(a != b for a, b in itertools.pairwise(voices))
    assert driver.execute_script("return window.nameChanges") == changes
    assert driver.find_element(By.ID, "listen").text == "Listen live"
    assert console_errors(driver) == []


def test_a_refused_stream_is_told_and_the_key_asked_for(driver: WebDriver, server_url: str) -> None:
    open_page(driver, server_url, None)
    driver.find_element(By.ID, "listen").click()

    WebDriverWait(driver, TIMEOUT_S).until(
        lambda d: (
            "API key" in d.find_element(By.ID, "error").text
            and d.find_element(By.ID, "listen").text == "Listen live"
        )
    )
    assert driver.find_element(By.ID, "error").text == (
        "Missing API key: send it as the key.<KEY> subprotocol or as 'key'. Enter the API key "
        "below to see the model and listen live."
    )
    assert driver.find_element(By.ID, "api-key").is_displayed()


def test_pcm_close_messages_and_hop_colours_in_the_browser(
    driver: WebDriver, server_url: str
) -> None:
    open_page(driver, server_url, API_KEY)
    pcm, messages, classes = driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        Promise.all([import("/static/live.js"), import("/static/drawings.js")]).then(
          ([{ toPcm16, closeMessage }, { hopClass }]) => {
            const view = new DataView(toPcm16(new Float32Array([0, 1, -1, 0.5, 2])));
            done([
              [0, 1, 2, 3, 4].map((i) => view.getInt16(2 * i, true)),
              [closeMessage(1000, "stopped"), closeMessage(1013, "2 streams are open"),
               closeMessage(1006, ""), closeMessage(1006, "", false)],
              [hopClass({ speech: false }, ["David", "Steve"]),
               hopClass({ speech: true, speaker: "Steve", unknown: false }, ["David", "Steve"]),
               hopClass({ speech: true, speaker: "unknown", unknown: true }, ["David"])],
            ]);
          });
        """
    )

    assert pcm == [0, 32767, -32768, 16383, 32767]
    assert messages == [
        None,
        "Stopped: the server is too busy for another stream; try again in a moment "
        "(2 streams are open).",
        "Stopped: the connection to the server was lost (code 1006).",
        "Stopped: could not connect to the server; check that it is still running, then try again.",
    ]
    assert classes == ["hop silence", "hop speaker-1", "hop unknown"]


# Counts the page's microphone captures in window.streams; with arguments[0], refuses them all
# with a DOMException of that name, as a browser does when the person says no.
WATCH_MICROPHONE = """
const refuse = arguments[0];
window.realGetUserMedia ??= navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
window.streams = [];
navigator.mediaDevices.getUserMedia = async (constraints) => {
  if (refuse) throw new DOMException("Permission denied", refuse);
  const stream = await window.realGetUserMedia(constraints);
  window.streams.push(stream);
  return stream;
};
"""
LIVE_TRACKS = "return window.streams.flatMap((s) => s.getTracks()).map((t) => t.readyState)"


def test_a_refused_microphone_and_a_double_click_leave_no_microphone_on(
    driver: WebDriver, server_url: str
) -> None:
    open_page(driver, server_url, API_KEY)
    listen = driver.find_element(By.ID, "listen")

    driver.execute_script(WATCH_MICROPHONE, "NotAllowedError")
    listen.click()
    WebDriverWait(driver, TIMEOUT_S).until(lambda d: d.find_element(By.ID, "live-error").text)
    assert driver.find_element(By.ID, "live-error").text == (
        "The browser did not allow the microphone. Allow it, or choose a file instead."
    )
    # A second press while the microphone is starting stops it again, as Stop would.
    driver.execute_script(WATCH_MICROPHONE, None)
    driver.execute_script("const b = arguments[0]; b.click(); b.click();", listen)
    WebDriverWait(driver, RELEASE_TIMEOUT_S).until(
        lambda d: d.execute_script(LIVE_TRACKS) and "live" not in d.execute_script(LIVE_TRACKS)
    )

    assert driver.execute_script(LIVE_TRACKS) == ["ended"]
    assert listen.text == "Listen live"
    assert driver.find_element(By.ID, "live-status").text == "Stopped listening."
    assert console_errors(driver) == []


# A server that answers the stream with arguments[0]'s hops, one every 50 ms, then holds on.
FAKE_STREAM = """const hops = arguments[0];
window.WebSocket = class {
  static OPEN = 1;
  readyState = 1;
  constructor() {
    setTimeout(() => {
      this.onopen();
      this.onmessage({ data: JSON.stringify({ type: "ready" }) });
      hops.forEach((hop, i) =>
        setTimeout(() => this.onmessage({ data: JSON.stringify(hop) }), 50 * (i + 1)));
    }, 0);
  }
  send() {}
  close() {}
};"""
# One hop of each kind of unknown, then one of David, and what the page says of each.
KINDS_OF_UNKNOWN = {
    "far": "(too far from every voice this model knows)",
    "unsure": "(it sounds between voices)",
    "poor_recording": "(the recording is too poor to judge)",
}
HOPS = [
    *({"t": 1.0 + i, "speech": True, "speaker": "unknown", "confidence": 0.5, "unknown": True,
       "unknown_reason": reason} for i, reason in enumerate(KINDS_OF_UNKNOWN)),
    {"t": 4.0, "speech": True, "speaker": "David", "confidence": 0.99, "unknown": False},
]  # fmt: skip
# Keeps each text #live-why shows in window.whys, with how the live region around it is read out
# (a screen reader hears the name "unknown" from its own region, and this from this one).
WATCH_WHY = """window.whys = [];
const why = document.getElementById("live-why");
const region = () => why.closest("[aria-live]");
new MutationObserver(() => why.hidden || window.whys.push(
  [why.textContent, region() && region().getAttribute("aria-live")])).observe(
  why, { childList: true, characterData: true, subtree: true, attributes: true });"""


def test_an_unknown_voice_heard_live_says_which_kind_of_unknown(
    driver: WebDriver, server_url: str
) -> None:
    open_page(driver, server_url, API_KEY)
    driver.execute_script(FAKE_STREAM, HOPS)
    driver.execute_script(WATCH_WHY)

    driver.find_element(By.ID, "listen").click()
    WebDriverWait(driver, TIMEOUT_S).until(
        lambda d: d.find_element(By.ID, "live-name").text == "David"
    )

    assert driver.execute_script("return window.whys") == [
        [why, "polite"] for why in KINDS_OF_UNKNOWN.values()
    ]
    assert not driver.find_element(By.ID, "live-why").is_displayed()


# A microphone that sends only digital silence, as a muted one does.
MUTED_MICROPHONE = """navigator.mediaDevices.getUserMedia = async () =>
  new AudioContext().createMediaStreamDestination().stream;"""


def test_a_muted_microphone_is_told_while_listening(driver: WebDriver, server_url: str) -> None:
    open_page(driver, server_url, API_KEY)
    driver.execute_script(MUTED_MICROPHONE)

    driver.find_element(By.ID, "listen").click()
    WebDriverWait(driver, TIMEOUT_S).until(
        lambda d: "silence" in d.find_element(By.ID, "live-status").text
    )

    assert driver.find_element(By.ID, "live-status").text == (
        "The microphone sends only silence: check that it is not muted and that the browser "
        "uses the one you speak into."
    )
    assert driver.find_element(By.ID, "live-error").text == ""  # the stream listens on
    driver.find_element(By.ID, "listen").click()
    assert console_errors(driver) == []
