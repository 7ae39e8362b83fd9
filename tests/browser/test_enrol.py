"""Teaching the page a third voice, in headless Chromium against a real server: the name rules,
a refused take, takes from the microphone with their histograms, training with its progress,
"Record" naming the new voice, and activating the first version, which no longer knows it.

The server has an API key, which the page must send on every call, and a speaker store in a
temporary folder. Chromium's fake microphone plays a file in which the new voice says "Hello"
once, after LEAD_SILENCE_S of silence, then silence to LOOP_S, over and over. Chromium starts it
afresh each time the page opens the microphone (once a take), so every take holds that one whole
word: the lead lets a take start late and the loop is long enough that a take which stops seconds
late, on a busy machine, still ends before the next word (with a loop as long as a take, one that
stopped late caught the start of the next word). The takes start a few milliseconds apart in the
file, so they are all but identical and the voice's radius is its floor, the measured voices'
threshold (``pipeline.openset``); without that floor the answer was "unknown" whenever a take
started where none of the five had. Screenshots go to ``artifacts/browser/``.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from pipeline.demo.synth import STRANGER, VOICES, VoiceSpec, synthesize_hello
from tests.browser.support import (
    DESKTOP,
    PHONE,
    chromium,
    console_errors,
    running_server,
    save_full_page,
    text_of,
    texts_of,
)
from tests.helpers import MODEL_DIR

pytestmark = pytest.mark.browser

API_KEY = "enrol-test-key"
KEY_STORAGE = "voiceid.apiKey"  # api.js's sessionStorage key
# A third voice, far from Steve (110 Hz), David (180 Hz) and the stranger (140 Hz): higher,
# with a shorter vocal tract, a brighter source and more breath.
NEW_VOICE = VoiceSpec(
    "Ada", pitch_hz=260.0, formant_scale=1.3, tilt=2.0, breathiness=0.35, shimmer=0.06
)
NAME = "Ada Byron"  # with a space, which the page must carry in the URL
SAMPLE_RATE = 16000  # Hz, of the generated clips
MIC_SEED = 3
LEAD_SILENCE_S = 1.5  # s of silence before the word in each loop: a take that starts late
# (the page sets up its audio after the microphone has started) still holds the whole word
LOOP_S = 6.0  # s, one loop of the fake microphone: the word and silence
TAKE_S = 3.4  # s between the clicks on a record button: past the word's end (2.63 s) by 0.77 s
TAKES = 6  # recorded; one is deleted again, which leaves the 5 the page asks for
RETAKE_S = (0.0, 0.2, 0.4)  # s added to a take recorded again because it came out as another
MIN_TAKES = 5  # teach.js's MIN_TAKES
ANSWER_TIMEOUT_S = 15.0
TRAIN_TIMEOUT_S = 240.0  # TensorFlow's start-up included, on a busy machine


@dataclass(frozen=True)
class Clips:
    microphone: Path  # the new voice, once every LOOP_S seconds
    silent: Path  # a second of digital silence


@dataclass(frozen=True)
class Server:
    url: str
    store: Path  # its VOICEID_DATA_DIR


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    assert NEW_VOICE.pitch_hz not in {v.pitch_hz for v in (*VOICES.values(), STRANGER)}
    folder = tmp_path_factory.mktemp("clips")
    hello = synthesize_hello(NEW_VOICE, np.random.default_rng(MIC_SEED), SAMPLE_RATE)
    word_ends_s = LEAD_SILENCE_S + hello.size / SAMPLE_RATE
    # Every take holds the whole word and, even one that stops 3 s late, none of the next.
    longest = TAKE_S + 0.1 * TAKES + RETAKE_S[-1]
    assert word_ends_s + 0.5 < TAKE_S and longest + 3.0 < LOOP_S + LEAD_SILENCE_S
    loop = np.zeros(round(LOOP_S * SAMPLE_RATE), dtype=np.float32)
    start = round(LEAD_SILENCE_S * SAMPLE_RATE)
    loop[start : start + hello.size] = hello
    microphone, silent = folder / "ada_loop.wav", folder / "silent.wav"
    sf.write(microphone, loop, SAMPLE_RATE, subtype="PCM_16")
    sf.write(silent, np.zeros(SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE, subtype="PCM_16")
    return Clips(microphone=microphone, silent=silent)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    store = tmp_path_factory.mktemp("store")
    env = {
        **os.environ,
        "VOICEID_MODEL_DIR": str(MODEL_DIR),
        "VOICEID_API_KEY": API_KEY,
        "VOICEID_DATA_DIR": str(store),
        "VOICEID_LOG_LEVEL": "warning",
    }
    with running_server(env, tmp_path_factory.mktemp("server") / "uvicorn.log") as url:
        yield Server(url, store)


@pytest.fixture(scope="module")
def driver(clips: Clips) -> Iterator[WebDriver]:
    with chromium(clips.microphone, loop=True) as browser:
        yield browser


# ---- helpers --------------------------------------------------------------------------------


def open_page(driver: WebDriver, server: Server) -> None:
    """Load the page with the API key in sessionStorage; wait until the model and its versions
    are listed."""
    driver.get(f"{server.url}/")
    driver.execute_script(f"sessionStorage.setItem('{KEY_STORAGE}', arguments[0])", API_KEY)
    driver.refresh()
    WebDriverWait(driver, ANSWER_TIMEOUT_S).until(
        lambda d: (
            d.find_elements(By.CSS_SELECTOR, "#labels li")
            and d.find_elements(By.CSS_SELECTOR, "#versions-list li")
        )
    )
    driver.get_log("browser")  # type: ignore[no-untyped-call]  # each test's console from here


def call_api(
    server: Server, path: str, *, data: bytes | None = None, method: str | None = None
) -> tuple[int, Any]:
    """The status and JSON body the API answers ``path`` with (a POST of ``data`` if given)."""
    headers = {"X-API-Key": API_KEY, "Content-Type": "audio/wav"}
    url = f"{server.url}{path}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def click(driver: WebDriver, element: WebElement) -> None:
    # Scrolled to the middle of the window (not under the sticky header) at once, since the page
    # scrolls smoothly and Selenium would click while it moves.
    script = "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})"
    driver.execute_script(script, element)
    element.click()


def click_css(driver: WebDriver, selector: str, *, tries: int = 5) -> None:
    """Click the element ``selector`` matches, finding it again if the page redrew its list
    between the finding and the click."""
    for attempt in range(tries):
        try:
            click(driver, driver.find_element(By.CSS_SELECTOR, selector))
            return
        except StaleElementReferenceException:
            if attempt == tries - 1:
                raise
            time.sleep(0.1)


def record(driver: WebDriver, button_id: str, status_id: str, seconds: float) -> None:
    """Press a record button, let the microphone run ``seconds``, press it again."""
    button = driver.find_element(By.ID, button_id)
    click(driver, button)
    WebDriverWait(driver, 5).until(lambda d: text_of(d, status_id).startswith("Recording."))
    time.sleep(seconds)
    click(driver, button)


def takes(driver: WebDriver, kind: str) -> list[Any]:
    return driver.find_elements(By.CSS_SELECTOR, f"#takes li.take.{kind}")


def wait_for_takes(driver: WebDriver, accepted: int) -> None:
    """Wait until ``accepted`` takes are accepted and none is being sent; on a timeout, fail
    with what the page shows of each take (a refused one says why)."""
    try:
        WebDriverWait(driver, ANSWER_TIMEOUT_S).until(
            lambda d: len(takes(d, "accepted")) == accepted and not takes(d, "sending")
        )
    except TimeoutException:
        cards = texts_of(driver, "#takes li.take")
        status, error = text_of(driver, "teach-status"), text_of(driver, "teach-error")
        shown = f"status {status!r}, error {error!r}, takes {cards}"
        raise AssertionError(f"{accepted} takes not accepted; {shown}") from None


def wait_for_answer(driver: WebDriver) -> str:
    """The text of ``#result`` once a new answer has arrived."""
    WebDriverWait(driver, ANSWER_TIMEOUT_S).until(
        lambda d: text_of(d, "answer-meta") or text_of(d, "error")
    )
    assert text_of(driver, "error") == "", f"the page shows an error: {text_of(driver, 'error')}"
    return text_of(driver, "result")


def identify_by_microphone(driver: WebDriver) -> str:
    driver.execute_script("document.getElementById('answer-meta').textContent = ''")
    record(driver, "record", "status", TAKE_S)
    return wait_for_answer(driver)


def type_name(driver: WebDriver, name: str) -> None:
    field = driver.find_element(By.ID, "speaker-name")
    field.clear()
    field.send_keys(name)


def record_take(driver: WebDriver, k: int) -> None:
    """Record take ``k`` (from 0) until the page accepts it. The fake microphone plays its file
    from the start for every take, so a take that a busy machine stopped late, after as many
    audio chunks as another, is the same recording, which the store keeps once ("... is a take
    of ... already"): it is recorded again, a little longer."""
    for extra in RETAKE_S:
        record(driver, "take-record", "teach-status", TAKE_S + 0.1 * k + extra)
        WebDriverWait(driver, ANSWER_TIMEOUT_S).until(
            lambda d: (
                (len(takes(d, "accepted")) == k + 1 and not takes(d, "sending"))
                or "already" in text_of(d, "teach-status")
            )
        )
        if len(takes(driver, "accepted")) == k + 1:
            return
    wait_for_takes(driver, accepted=k + 1)  # fails, saying what the page shows


def refused_silent_take(driver: WebDriver, server: Server, clips: Clips) -> Any:
    """Open the page, give NAME the silent clip as a take, and return its refused card."""
    open_page(driver, server)
    type_name(driver, NAME)
    driver.find_element(By.ID, "take-files").send_keys(str(clips.silent))
    WebDriverWait(driver, ANSWER_TIMEOUT_S).until(lambda d: takes(d, "refused"))
    [card] = takes(driver, "refused")
    return card


def labels_shown(driver: WebDriver) -> list[str]:
    return texts_of(driver, "#labels li")


# ---- tests ----------------------------------------------------------------------------------

# Names the page refuses as the server does, and some it lets through.
REFUSED_NAMES = ["", " Ada", "Ada ", ".Ada", "Ada!", "A" * 65, "Ada/Byron", "Ada\\Byron", "..",
                 "Ada\u3164", "\U0001d400" * 64]  # a Hangul filler; 256 bytes of UTF-8  # fmt: skip
ALLOWED_NAMES = ["Ada", "Ada Byron", "Zoë", "ada_b-2.0", "李小龍", "A" * 64]
# Names the store takes apart from their clips (GET finds no such speaker) but refuses takes for.
RESERVED_NAMES = ["unknown", "UNKNOWN"]


def test_the_page_checks_names_by_the_servers_rules(driver: WebDriver, server: Server) -> None:
    open_page(driver, server)
    problems = driver.execute_async_script(
        """
        const [names, done] = [arguments[0], arguments[arguments.length - 1]];
        import("/static/teach.js").then((teach) => done(names.map(teach.checkSpeakerName)));
        """,
        REFUSED_NAMES + ALLOWED_NAMES + RESERVED_NAMES,
    )
    verdicts = dict(zip(REFUSED_NAMES + ALLOWED_NAMES + RESERVED_NAMES, problems, strict=True))
    assert [name for name in REFUSED_NAMES if not verdicts[name]] == []
    assert {name: verdicts[name] for name in ALLOWED_NAMES} == dict.fromkeys(ALLOWED_NAMES, "")
    assert verdicts["Ada!"] == (
        "“Ada!” has “!”; a name holds letters, digits, spaces, “-”, “_” and “.” only."
    )
    assert {name: verdicts[name] for name in RESERVED_NAMES} == {
        name: f"“{name}” reads as “unknown”, the answer for a voice the model does not know; "
        "choose another name."
        for name in RESERVED_NAMES
    }
    # The server agrees (an empty name is no path of a speaker).
    for name in [n for n in REFUSED_NAMES + ALLOWED_NAMES if n]:
        status, _ = call_api(server, f"/speakers/{urllib.parse.quote(name, safe='')}")
        assert status == (422 if verdicts[name] else 404), name

    # A take needs a name: the page says why, and does not start the microphone.
    type_name(driver, "Ada!")
    click(driver, driver.find_element(By.ID, "take-record"))
    assert text_of(driver, "name-error") == verdicts["Ada!"]
    assert driver.switch_to.active_element == driver.find_element(By.ID, "speaker-name")
    assert not driver.find_element(By.ID, "take-meter").is_displayed()
    assert console_errors(driver) == []


def test_a_silent_take_is_refused_with_the_servers_reason(
    driver: WebDriver, server: Server, clips: Clips
) -> None:
    card = refused_silent_take(driver, server, clips)

    status, answer = call_api(server, "/predict", data=clips.silent.read_bytes())
    assert status == 422
    reason = answer["detail"]
    assert card.find_element(By.CLASS_NAME, "take-title").text == "silent.wav"
    shown = card.find_element(By.CLASS_NAME, "take-reason").text
    assert shown == reason[0].upper() + reason[1:]
    assert text_of(driver, "take-count") == f"0 takes of {NAME}: 5 more before it can train."
    assert driver.find_element(By.ID, "train").get_attribute("aria-disabled") == "true"
    save_full_page(driver, "phone-teach-refused", PHONE)
    # A refused take is not stored; the server's refusal leaves a 422 in the console.
    assert NAME not in [s["name"] for s in call_api(server, "/speakers")[1]["speakers"]]
    assert [e for e in console_errors(driver) if "/clips - Failed" not in e] == []


def test_dismissing_a_refused_take_from_the_keyboard_keeps_the_focus_in_the_section(
    driver: WebDriver, server: Server, clips: Clips
) -> None:
    card = refused_silent_take(driver, server, clips)

    card.find_element(By.TAG_NAME, "button").send_keys(Keys.ENTER)

    WebDriverWait(driver, ANSWER_TIMEOUT_S).until(lambda d: not takes(d, "refused"))
    assert driver.switch_to.active_element.get_attribute("id") == "take-record"


def test_a_take_that_is_no_recording_says_which_files_to_choose(
    driver: WebDriver, server: Server, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a recording")
    open_page(driver, server)
    type_name(driver, NAME)

    driver.find_element(By.ID, "take-files").send_keys(str(notes))

    WebDriverWait(driver, ANSWER_TIMEOUT_S).until(lambda d: takes(d, "refused"))
    [card] = takes(driver, "refused")
    assert card.find_element(By.CLASS_NAME, "take-reason").text == (
        "Cannot decode text data: not a supported audio format; choose a recording in WAV, "
        "FLAC, OGG or MP3, or record one with the microphone"
    )


def test_a_name_that_reads_as_a_voice_of_the_model_is_marked_on_the_name(
    driver: WebDriver, server: Server, clips: Clips
) -> None:
    open_page(driver, server)
    type_name(driver, "david")

    driver.find_element(By.ID, "take-files").send_keys(str(clips.microphone))

    WebDriverWait(driver, ANSWER_TIMEOUT_S).until(lambda d: takes(d, "refused"))
    assert text_of(driver, "name-error") == (
        "Speaker name 'david' reads the same as 'David', a speaker of the model: use 'David' to "
        "add to that speaker, or a name that reads differently"
    )
    assert driver.find_element(By.ID, "speaker-name").get_attribute("aria-invalid") == "true"


def test_takes_for_a_voice_of_the_model_are_sent_once_the_person_agrees(
    driver: WebDriver, server: Server, clips: Clips
) -> None:
    open_page(driver, server)
    type_name(driver, "Steve")
    answer = "window.confirm = (message) => { window.asked = message; return arguments[0]; }"
    driver.execute_script(answer.replace("arguments[0]", "false"))

    driver.find_element(By.ID, "take-files").send_keys(str(clips.microphone))
    WebDriverWait(driver, ANSWER_TIMEOUT_S).until(lambda d: text_of(d, "name-error"))
    declined = text_of(driver, "name-error")
    before = call_api(server, "/speakers/Steve")[1]["clips"]
    driver.execute_script(answer.replace("arguments[0]", "true"))
    driver.find_element(By.ID, "take-files").send_keys(str(clips.microphone))
    wait_for_takes(driver, accepted=1)
    after = call_api(server, "/speakers/Steve")[1]["clips"]
    asked = driver.execute_script("return window.asked")
    removed = call_api(server, "/speakers/Steve", method="DELETE")  # the next test trains

    assert asked == (
        "The model knows a voice called “Steve” already. Add your takes to that voice? "
        "(Cancel to choose another name.)"
    )
    assert declined == "“Steve” is a voice the model knows; choose a name of your own."
    assert (before, len(after), removed[0]) == ([], 1, 200)
    assert console_errors(driver) == []


def test_a_take_without_speech_says_what_would_help(
    driver: WebDriver, server: Server, tmp_path: Path
) -> None:
    click = np.zeros(SAMPLE_RATE, dtype=np.float32)
    click[SAMPLE_RATE // 2] = 0.5
    path = tmp_path / "click.wav"
    sf.write(path, click, SAMPLE_RATE, subtype="PCM_16")
    open_page(driver, server)
    type_name(driver, NAME)

    driver.find_element(By.ID, "take-files").send_keys(str(path))

    WebDriverWait(driver, ANSWER_TIMEOUT_S).until(lambda d: takes(d, "refused"))
    [card] = takes(driver, "refused")
    assert card.find_element(By.CLASS_NAME, "take-reason").text.startswith("Clip holds no speech")
    advice = card.find_element(By.CLASS_NAME, "take-advice").text
    assert advice.startswith("Only 0.0") and advice.endswith(
        " s of speech: say a whole word or more, at least half a second."
    )
    assert [e for e in console_errors(driver) if "/clips - Failed" not in e] == []


# The characters an element shows, from left to right on the screen, laid out on one line while
# they are measured; the isolates (U+2068, U+2069), which take no room, left out.
ON_SCREEN = """const element = arguments[0];
element.style.whiteSpace = "nowrap";
const chars = [];
const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
for (let node = walker.nextNode(); node; node = walker.nextNode())
  for (let i = 0; i < node.length; i += 1) {
    if ("\\u2068\\u2069".includes(node.data[i])) continue;
    const range = document.createRange();
    range.setStart(node, i);
    range.setEnd(node, i + 1);
    chars.push([range.getBoundingClientRect().left, node.data[i]]);
  }
element.style.whiteSpace = "";
return chars.sort((a, b) => a[0] - b[0]).map(([, char]) => char).join("");"""
RTL_NAME = "2 \u05e2\u05d3\u05d4"  # a digit, then a name in Hebrew letters: "2 עדה"
RTL_ISOLATED = f"\u2068{RTL_NAME}\u2069"  # as the page's isolate() writes it
# How the page shows the name, isolated: read from the right, the digit first.
RTL_ON_SCREEN = "\u05d4\u05d3\u05e2 2"


def on_screen(driver: WebDriver, element: WebElement) -> str:
    return str(driver.execute_script(ON_SCREEN, element))


def store_rtl_take(driver: WebDriver, server: Server, clips: Clips) -> None:
    """Open the page and store the microphone's clip as a take of RTL_NAME."""
    open_page(driver, server)
    type_name(driver, RTL_NAME)
    driver.find_element(By.ID, "take-files").send_keys(str(clips.microphone))
    wait_for_takes(driver, accepted=1)


def test_a_right_to_left_name_in_the_servers_refusal_keeps_its_place(
    driver: WebDriver, server: Server, clips: Clips
) -> None:
    store_rtl_take(driver, server, clips)
    type_name(driver, "Ada Clash")  # the same recording, for another voice, is refused

    driver.find_element(By.ID, "take-files").send_keys(str(clips.microphone))
    WebDriverWait(driver, ANSWER_TIMEOUT_S).until(lambda d: takes(d, "refused"))
    reason = takes(driver, "refused")[0].find_element(By.CLASS_NAME, "take-reason")
    text, shown = reason.text, on_screen(driver, reason)
    removed = call_api(server, f"/speakers/{urllib.parse.quote(RTL_NAME)}", method="DELETE")

    assert text == (
        f"The store holds this clip as one of '{RTL_ISOLATED}', and one recording cannot be two "
        f"speakers: remove it from '{RTL_ISOLATED}' first if it was filed under the wrong name"
    )
    assert shown == (
        f"The store holds this clip as one of '{RTL_ON_SCREEN}', and one recording cannot be two "
        f"speakers: remove it from '{RTL_ON_SCREEN}' first if it was filed under the wrong name"
    )
    assert removed[0] == 200
    assert [e for e in console_errors(driver) if "/clips - Failed" not in e] == []


def test_a_right_to_left_voice_keeps_its_place_in_the_list_of_voices(
    driver: WebDriver, server: Server, clips: Clips
) -> None:
    store_rtl_take(driver, server, clips)
    WebDriverWait(driver, ANSWER_TIMEOUT_S).until(lambda d: RTL_NAME in text_of(d, "speakers-list"))
    [item] = [
        item
        for item in driver.find_elements(By.CSS_SELECTOR, "#speakers-list .speaker-text")
        if RTL_NAME in item.text
    ]
    text, shown = item.text, on_screen(driver, item)
    removed = call_api(server, f"/speakers/{urllib.parse.quote(RTL_NAME)}", method="DELETE")

    assert text == f"{RTL_ISOLATED} 1 take, 6.0 s \u00b7 not in the served model"
    assert shown == f"{RTL_ON_SCREEN} 1 take, 6.0 s \u00b7 not in the served model"
    assert removed[0] == 200


# Logs the page's requests from here on, in window.requests: "METHOD /path" each, in order.
LOG_REQUESTS = """window.requests = [];
const real = window.fetch;
window.fetch = (url, options = {}) => {
  window.requests.push(`${options.method || "GET"} ${String(url).split("?")[0]}`);
  return real(url, options);
};"""


def posts(driver: WebDriver) -> list[str]:
    return [r for r in driver.execute_script("return window.requests") if r.startswith("POST")]


def open_page_without_key(driver: WebDriver, server: Server) -> WebElement:
    """Load the page with no API key, wait for it to ask for one, and return the key field."""
    driver.get(f"{server.url}/")
    driver.execute_script("sessionStorage.clear()")
    driver.refresh()
    key_field = driver.find_element(By.ID, "api-key")
    WebDriverWait(driver, ANSWER_TIMEOUT_S).until(lambda d: key_field.is_displayed())
    return key_field


def test_every_action_refused_for_the_key_is_done_once_the_right_key_is_entered(
    driver: WebDriver, server: Server, clips: Clips
) -> None:
    key_field = open_page_without_key(driver, server)
    driver.execute_script(LOG_REQUESTS)
    driver.find_element(By.ID, "clip").send_keys(str(clips.microphone))  # a clip to identify
    WebDriverWait(driver, ANSWER_TIMEOUT_S).until(lambda d: len(posts(d)) == 1)
    type_name(driver, "Ada Waiting")
    driver.find_element(By.ID, "take-files").send_keys(str(clips.microphone))  # and a take
    WebDriverWait(driver, ANSWER_TIMEOUT_S).until(lambda d: "take" in text_of(d, "error"))
    asked = text_of(driver, "error")

    key_field.send_keys("not-the-key", Keys.ENTER)
    WebDriverWait(driver, ANSWER_TIMEOUT_S).until(lambda d: "Wrong" in text_of(d, "error"))
    time.sleep(1.0)  # time for a retry, were one sent
    wrong, sent_wrong = text_of(driver, "error"), posts(driver)
    key_field.clear()
    key_field.send_keys(API_KEY, Keys.ENTER)
    wait_for_takes(driver, accepted=1)  # the last one sent again
    time.sleep(1.0)  # time for the others to be answered, and for a second retry, were one sent
    sent, answered, labels = posts(driver), text_of(driver, "answer-meta"), labels_shown(driver)
    removed = call_api(server, "/speakers/Ada%20Waiting", method="DELETE")

    waiting = "see the model, send the clip again, look up Ada Waiting and store the take"
    assert asked == (
        f"Missing API key: send it in the X-API-Key header. Enter the API key below to {waiting}."
    )
    assert wrong == f"Wrong API key. Enter the API key below to {waiting}."
    refused = ["POST /predict", "POST /speakers/Ada%20Waiting/clips"]
    assert sent_wrong == refused  # a wrong key sends none of them again
    assert sent == refused + refused  # the right key sends each again once, in order
    assert answered != "" and labels == ["David", "Steve"]  # the clip and the model, shown
    assert not key_field.is_displayed()
    assert text_of(driver, "error") == ""
    assert removed[0] == 200


def test_a_take_for_a_voice_of_the_model_refused_for_the_key_asks_first_once_it_is_entered(
    driver: WebDriver, server: Server, clips: Clips
) -> None:
    key_field = open_page_without_key(driver, server)
    driver.execute_script("window.confirm = (message) => { window.asked = message; return true; }")
    type_name(driver, "Steve")  # the look-up of the name is refused too: it is asked again
    driver.find_element(By.ID, "take-files").send_keys(str(clips.microphone))
    WebDriverWait(driver, ANSWER_TIMEOUT_S).until(lambda d: "take" in text_of(d, "error"))

    key_field.send_keys(API_KEY, Keys.ENTER)
    wait_for_takes(driver, accepted=1)
    asked = driver.execute_script("return window.asked")
    removed = call_api(server, "/speakers/Steve", method="DELETE")

    assert asked == (
        "The model knows a voice called “Steve” already. Add your takes to that voice? "
        "(Cancel to choose another name.)"
    )
    assert removed[0] == 200


def write_takes(folder: Path, takes: list[np.ndarray]) -> list[Path]:
    paths = [folder / f"take-{k}.wav" for k in range(len(takes))]
    for path, samples in zip(paths, takes, strict=True):
        sf.write(path, samples, SAMPLE_RATE, subtype="PCM_16")
    return paths


def drop_takes(driver: WebDriver, server: Server, name: str, paths: list[Path]) -> list[str]:
    """Send ``paths`` as takes of ``name``; the advice the page then gives about them."""
    open_page(driver, server)
    type_name(driver, name)
    driver.find_element(By.ID, "take-files").send_keys("\n".join(str(p) for p in paths))
    wait_for_takes(driver, accepted=len(paths))
    return texts_of(driver, "#takes-advice li")


ADVICE_LATER = ("Record a few more takes later, at another time or in another room, to have "
                "your voice named wherever you are.")  # fmt: skip


def test_takes_all_from_one_sitting_are_told_to_be_recorded_again_later(
    driver: WebDriver, server: Server, tmp_path: Path
) -> None:
    rng = np.random.default_rng(11)
    hellos = [synthesize_hello(NEW_VOICE, rng, SAMPLE_RATE) for _ in range(3)]
    paths = write_takes(tmp_path, [0.3 * h / np.abs(h).max() for h in hellos])

    advice = drop_takes(driver, server, "Ada Sitting", paths)
    save_full_page(driver, "phone-teach-one-sitting", PHONE)
    click_css(driver, "#takes li.take.accepted button")  # delete one: two say nothing yet
    WebDriverWait(driver, ANSWER_TIMEOUT_S).until(
        lambda d: not d.find_element(By.ID, "takes-advice").is_displayed()
    )

    assert advice == [
        "All 3 takes come from one sitting (within 1 minute, at the same level and background): "
        "the model would know your voice only as it sounds right now.",
        ADVICE_LATER,
    ]
    assert call_api(server, "/speakers/Ada%20Sitting", method="DELETE")[0] == 200
    assert console_errors(driver) == []


def test_takes_as_different_as_other_voices_are_told_so(
    driver: WebDriver, server: Server, tmp_path: Path
) -> None:
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    tones = [0.3 * np.sin(2 * np.pi * f * t).astype(np.float32) for f in (150.0, 900.0, 3000.0)]

    advice = drop_takes(driver, server, "Ada Tones", write_takes(tmp_path, tones))

    assert advice[0] == (
        "Your takes differ from one another about as much as two different voices do: say the "
        "same words, the same way, in each take, and delete any take that is not you."
    )
    assert advice[-1] == ADVICE_LATER
    assert call_api(server, "/speakers/Ada%20Tones", method="DELETE")[0] == 200
    assert console_errors(driver) == []


@pytest.mark.slow
def test_a_third_voice_is_taught_named_and_forgotten_by_the_first_version(
    driver: WebDriver, server: Server
) -> None:
    open_page(driver, server)
    type_name(driver, NAME)

    for k in range(TAKES):
        record_take(driver, k)
    assert takes(driver, "refused") == []
    bars = driver.execute_script(  # each take shows its histogram
        "return [...document.querySelectorAll('#takes li.take.accepted')]"
        ".map((card) => card.querySelectorAll('svg rect').length)"
    )
    assert bars == [60] * TAKES
    click_css(driver, f"[aria-label^='Delete Take {TAKES} ']")
    wait_for_takes(driver, accepted=MIN_TAKES)
    assert text_of(driver, "take-count") == f"{MIN_TAKES} takes of {NAME}: ready to train."
    assert len(call_api(server, f"/speakers/{urllib.parse.quote(NAME)}")[1]["clips"]) == MIN_TAKES
    WebDriverWait(driver, 5).until(lambda d: NAME in text_of(d, "speakers-list"))
    assert f"{NAME} {MIN_TAKES} takes" in text_of(driver, "speakers-list")
    save_full_page(driver, "desktop-teach-takes", DESKTOP)

    first = call_api(server, "/models")[1]["versions"][0]
    train = driver.find_element(By.ID, "train")
    assert train.get_attribute("aria-disabled") == "false"
    click(driver, train)
    progress = driver.find_element(By.ID, "train-progress")
    WebDriverWait(driver, 10).until(lambda d: progress.is_displayed())
    WebDriverWait(driver, TRAIN_TIMEOUT_S, poll_frequency=0.5).until(
        lambda d: text_of(d, "teach-status").startswith("Done") or text_of(d, "teach-error")
    )
    assert text_of(driver, "teach-error") == ""
    versions = call_api(server, "/models")[1]["versions"]
    new = versions[-1]
    assert new["active"] and new["labels"] == sorted([NAME, *first["labels"]])
    assert text_of(driver, "teach-status").startswith(
        f"Done: now serving version {new['version']}, which knows: Ada Byron, David and Steve."
    )
    WebDriverWait(driver, 5).until(lambda d: labels_shown(d) == new["labels"])
    save_full_page(driver, "desktop-teach-trained", DESKTOP)

    assert identify_by_microphone(driver) == NAME
    save_full_page(driver, "phone-teach-named", PHONE)

    WebDriverWait(driver, 5).until(  # the versions list is drawn again after training
        lambda d: len(texts_of(d, "#versions-list li")) == len(versions)
    )
    click_css(driver, f"[aria-label^='Activate version {first['version']} ']")
    WebDriverWait(driver, 10).until(lambda d: labels_shown(d) == first["labels"])
    assert text_of(driver, "versions-status") == (
        f"Now serving version {first['version']}, which knows: David and Steve."
    )
    assert identify_by_microphone(driver) != NAME
    assert console_errors(driver) == []

    # Damaged on disk since: the version says why it does not load, and offers no Activate.
    (network,) = (server.store / ".versions").glob("*/network.npz")
    network.write_bytes(b"damaged")
    open_page(driver, server)
    item = driver.find_element(By.CSS_SELECTOR, f"[data-version='{new['version']}']")
    assert item.find_element(By.CLASS_NAME, "version-problem").text.startswith(
        f"Does not load: {network.parent.name}/network.npz "
    )
    assert item.find_elements(By.TAG_NAME, "button") == []
