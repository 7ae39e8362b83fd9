"""The page for someone on a keyboard, a screen reader or a small screen, in headless Chromium
against a real server: what the accessibility tree names each control, what the live regions
say, the order of the tab stops and their focus rings, tasks done with Tab, Enter and Space
alone, the page at 360 px and at 200 % zoom, the contrast of its text in light and dark, and
no motion for someone who asks for less.

The server has no API key, and a speaker store in a temporary folder. Chromium's fake
microphone plays David's "Hello" once from each time the page opens it, then silence.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from pipeline.demo.synth import STRANGER, VOICES, synthesize_hello
from tests.browser.support import (
    chromium,
    console_errors,
    horizontal_overflow,
    running_server,
    text_of,
)
from tests.helpers import MODEL_DIR

pytestmark = pytest.mark.browser

SAMPLE_RATE = 16000  # Hz, of the generated clips
CLIP_SEED = 7  # the default model was trained on seed 0's clips
TAKE_SEEDS = range(20, 25)  # one take each for "teach a new voice"
LEAD_SILENCE_S = 0.5  # s before and after the microphone's word
RECORD_S = 2.5  # s between the presses that start and stop a recording
TIMEOUT_S = 15.0
MIN_CONTRAST = 4.5  # WCAG 2 AA, body text
MIN_CONTRAST_LARGE = 3.0  # for text of 24 px, or bold of 18.66 px (14 pt), and over
MIN_TARGET_PX = 24  # WCAG 2.2 target size (minimum), CSS px


@dataclass(frozen=True)
class Clips:
    microphone: Path  # David, with silence before and after
    david: Path
    stranger: Path
    takes: list[Path]  # five takes of a voice the model does not know


def _write(path: Path, samples: np.ndarray) -> Path:
    sf.write(path, samples, SAMPLE_RATE, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    folder = tmp_path_factory.mktemp("clips")
    david = synthesize_hello(VOICES["David"], np.random.default_rng(CLIP_SEED), SAMPLE_RATE)
    stranger = synthesize_hello(STRANGER, np.random.default_rng(CLIP_SEED), SAMPLE_RATE)
    lead = np.zeros(round(LEAD_SILENCE_S * SAMPLE_RATE), dtype=np.float32)
    takes = [synthesize_hello(STRANGER, np.random.default_rng(s), SAMPLE_RATE) for s in TAKE_SEEDS]
    return Clips(
        microphone=_write(folder / "david_mic.wav", np.concatenate([lead, david, lead])),
        david=_write(folder / "david.wav", david),
        stranger=_write(folder / "stranger.wav", stranger),
        takes=[_write(folder / f"take-{k}.wav", take) for k, take in enumerate(takes)],
    )


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {
        **os.environ,
        "VOICEID_MODEL_DIR": str(MODEL_DIR),
        "VOICEID_DATA_DIR": str(tmp_path_factory.mktemp("store")),
        "VOICEID_LOG_LEVEL": "warning",
    }
    with running_server(env, tmp_path_factory.mktemp("server") / "uvicorn.log") as url:
        yield url


@pytest.fixture(scope="module")
def driver(clips: Clips) -> Iterator[WebDriver]:
    with chromium(clips.microphone, loop=False) as browser:
        yield browser


def open_page(driver: WebDriver, url: str) -> None:
    """Load the page fresh, at the desktop size, and wait for the model report."""
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    driver.get(f"{url}/")
    WebDriverWait(driver, TIMEOUT_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#labels li"))
    driver.get_log("browser")  # type: ignore[no-untyped-call]  # each test's console from here


def upload(driver: WebDriver, clip: Path) -> None:
    """Give ``clip`` to "Choose a file…" and wait for the answer or the error."""
    driver.find_element(By.ID, "clip").send_keys(str(clip))
    WebDriverWait(driver, TIMEOUT_S).until(
        lambda d: text_of(d, "answer-meta") or text_of(d, "error")
    )


def wait_for_text(driver: WebDriver, element_id: str, start: str) -> None:
    """Wait until the text of ``element_id`` starts with ``start``."""
    WebDriverWait(driver, TIMEOUT_S).until(lambda d: text_of(d, element_id).startswith(start))


# ---- the accessibility tree -------------------------------------------------------------------


def ax_node(driver: WebDriver, expression: str) -> dict[str, Any]:
    """The accessibility tree's node for the element the script ``expression`` evaluates to."""
    found = driver.execute_cdp_cmd("Runtime.evaluate", {"expression": expression})
    object_id = found["result"]["objectId"]
    tree = driver.execute_cdp_cmd(
        "Accessibility.getPartialAXTree", {"objectId": object_id, "fetchRelatives": False}
    )
    node: dict[str, Any] = tree["nodes"][0]
    return node


def role_and_name(node: dict[str, Any]) -> tuple[str, str]:
    return str(node["role"]["value"]), str(node.get("name", {}).get("value", ""))


def ax_states(node: dict[str, Any]) -> dict[str, Any]:
    """The node's states (pressed, disabled, ...) by name."""
    return {prop["name"]: prop["value"].get("value") for prop in node.get("properties", [])}


def focused(driver: WebDriver) -> tuple[str, str]:
    return role_and_name(ax_node(driver, "document.activeElement"))


def press(driver: WebDriver, key: str, *, shift: bool = False) -> None:
    keys = ActionChains(driver)
    if shift:
        keys.key_down(Keys.SHIFT).send_keys(key).key_up(Keys.SHIFT)
    else:
        keys.send_keys(key)
    keys.perform()


def tab_stops(driver: WebDriver, count: int, *, shift: bool = False) -> list[tuple[str, str]]:
    """The role and name of what has the focus after each of ``count`` presses of Tab (with
    Shift, if ``shift``)."""
    stops = []
    for _ in range(count):
        press(driver, Keys.TAB, shift=shift)
        stops.append(focused(driver))
    return stops


def answered_with_nothing_focused(driver: WebDriver, url: str, clip: Path) -> None:
    """The page fresh with ``clip`` answered and the model's plots shown (their links are tab
    stops from then on), scrolled to the top with nothing focused."""
    open_page(driver, url)
    upload(driver, clip)
    WebDriverWait(driver, TIMEOUT_S).until(
        lambda d: d.find_element(By.ID, "plot-confusion-link").get_attribute("href")
    )
    driver.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")


CURVES = "Training curves: loss and accuracy after each epoch, for training and validation clips"
CONFUSION = (
    "Confusion matrix of the validation clips: true speaker in rows, predicted speaker in columns"
)
# Every tab stop of the page with an answer shown, in order, as the accessibility tree has it.
TAB_STOPS = [
    ("link", "Skip to the page"),
    ("link", "voiceid home"),
    ("link", "Try it"),
    ("link", "How it decides"),
    ("link", "Teach it"),
    ("link", "Model report"),
    ("button", "Record"),
    ("button", "Listen live"),
    ("button", "Choose a file…"),
    ("textbox", "Your name"),
    ("button", "Record a take"),
    ("button", "Choose files…"),
    ("button", "Train"),
    ("link", CURVES),
    ("link", CONFUSION),
    ("DisclosureTriangle", "All training settings"),
    ("link", "the HTTP API"),
]
BODY = ("none", "")  # <body>, which holds the focus once it has left the page


def test_every_tab_stop_is_named_for_what_it_does_in_the_order_shown(
    driver: WebDriver, server_url: str, clips: Clips
) -> None:
    answered_with_nothing_focused(driver, server_url, clips.david)

    forward = tab_stops(driver, len(TAB_STOPS))
    backward = tab_stops(driver, len(TAB_STOPS), shift=True)

    assert forward == TAB_STOPS
    assert backward == [*TAB_STOPS[-2::-1], BODY]  # and on, out of the page: nothing traps it


# The focus ring of the element with the focus, or of the label that stands for a visually
# hidden file input: "<style> <width>".
FOCUS_RING = """let shown = document.activeElement;
if (shown.matches(".visually-hidden")) shown = document.querySelector(`label[for="${shown.id}"]`);
const style = getComputedStyle(shown);
return `${style.outlineStyle} ${style.outlineWidth}`;"""


def test_the_focus_is_ringed_at_every_tab_stop(
    driver: WebDriver, server_url: str, clips: Clips
) -> None:
    answered_with_nothing_focused(driver, server_url, clips.david)

    rings = []
    for _ in TAB_STOPS:
        press(driver, Keys.TAB)
        rings.append(driver.execute_script(FOCUS_RING))

    assert rings == ["solid 3px"] * len(TAB_STOPS)


def test_the_drawings_say_what_they_show(driver: WebDriver, server_url: str, clips: Clips) -> None:
    open_page(driver, server_url)
    upload(driver, clips.david)

    histogram = role_and_name(ax_node(driver, "document.getElementById('histogram')"))
    network = role_and_name(ax_node(driver, "document.getElementById('network')"))

    assert histogram[0] == "image"
    assert re.fullmatch(
        r"Histogram of 60 frequency bands from 80 Hz to 7\.3 kHz; "
        r"the loudest band is [\d.]+ k?Hz at -?\d+ dB\.",
        histogram[1],
    ), histogram[1]
    assert network[0] == "image"
    assert network[1].startswith("Network diagram: 60 inputs, 6 hidden neurons with activations ")


# The text of the live region (polite or assertive) that holds element arguments[0], or null.
LIVE_TEXT = """const region = document.getElementById(arguments[0]).closest(
  '[role=status], [role=alert], [aria-live=polite], [aria-live=assertive]');
return region && [region.getAttribute('role'), region.textContent];"""


def test_answers_and_refusals_are_read_out_from_live_regions(
    driver: WebDriver, server_url: str, clips: Clips, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.wav"
    notes.write_bytes(b"not a recording at all")
    open_page(driver, server_url)

    upload(driver, clips.david)
    named = driver.execute_script(LIVE_TEXT, "status")
    upload(driver, clips.stranger)
    unknown = driver.execute_script(LIVE_TEXT, "status")
    upload(driver, notes)
    refused = driver.execute_script(LIVE_TEXT, "error")

    assert named[0] == "status"
    assert re.fullmatch(r"David, [\d.]+% sure\.", named[1]), named
    assert unknown[0] == "status"
    assert unknown[1].startswith("Unknown speaker: "), unknown
    assert refused == [
        "alert",
        "Could not identify notes.wav: cannot decode text data: not a supported audio format; "
        "choose a recording in WAV, FLAC, OGG or MP3, or record one with the microphone.",
    ]
    assert console_errors(driver, allowed=re.compile(r"/predict\?explain=true - .* 415")) == []


def test_the_stop_buttons_say_what_they_stop_and_nothing_else(
    driver: WebDriver, server_url: str
) -> None:
    """While recording or listening, the button shows "Stop"; a screen reader hears which, and
    not "pressed" beside it (which reads as stopped)."""
    open_page(driver, server_url)
    listen = "document.getElementById('listen')"
    record = "document.getElementById('record')"
    driver.execute_script(f"{listen}.focus()")

    press(driver, Keys.SPACE)
    wait_for_text(driver, "live-status", "Listening.")
    listening = ax_node(driver, listen)
    press(driver, Keys.SPACE)
    wait_for_text(driver, "live-status", "Stopped listening.")
    press(driver, Keys.TAB, shift=True)
    press(driver, Keys.ENTER)
    wait_for_text(driver, "status", "Recording.")
    recording = ax_node(driver, record)
    time.sleep(RECORD_S)

    assert (role_and_name(listening), ax_states(listening).get("pressed")) == (
        ("button", "Stop listening"), None
    )  # fmt: skip
    assert role_and_name(recording) == ("button", "Stop recording")
    press(driver, Keys.ENTER)
    WebDriverWait(driver, TIMEOUT_S).until(lambda d: text_of(d, "answer-meta"))
    assert [role_and_name(ax_node(driver, button)) for button in (record, listen)] == [
        ("button", "Record"), ("button", "Listen live")
    ]  # fmt: skip
    assert focused(driver) == ("button", "Record")


# Every element of visible text whose contrast with what lies behind it is under WCAG's AA
# minimum: [ratio, "tag.class", text]. The colours behind are blended up through the
# ancestors' backgrounds onto white; the page's backgrounds are plain colours (no filters or
# images). Controls marked aria-disabled are left out, as WCAG leaves out inactive ones.
LOW_CONTRAST = """const [normal, large] = arguments;
function rgba(css) { // rgb(r g b / a), or color(srgb r g b / a) with channels from 0 to 1
  const [r, g, b, a = 1] = css.replace("srgb", "").match(/[\\d.]+/g).map(Number);
  const scale = css.startsWith("color(") ? 255 : 1;
  return [r * scale, g * scale, b * scale, a];
}
const over = (top, bottom) =>
  [0, 1, 2].map((i) => top[i] * top[3] + bottom[i] * (1 - top[3])).concat(1);
const channel = (v) => (v / 255 <= 0.03928 ? v / 255 / 12.92 : ((v / 255 + 0.055) / 1.055) ** 2.4);
const luminance = (c) => 0.2126 * channel(c[0]) + 0.7152 * channel(c[1]) + 0.0722 * channel(c[2]);
function behind(element) {
  const layers = [];
  for (let e = element; e; e = e.parentElement)
    layers.push(rgba(getComputedStyle(e).backgroundColor));
  return layers.reverse().reduce((below, layer) => over(layer, below), [255, 255, 255, 1]);
}
const low = [];
for (const element of document.querySelectorAll("body *")) {
  const text = [...element.childNodes].filter((n) => n.nodeType === Node.TEXT_NODE)
    .map((n) => n.textContent).join("").trim();
  const style = getComputedStyle(element);
  if (!text || !element.checkVisibility({ visibilityProperty: true })) continue;
  if (element.closest("svg, .visually-hidden, [aria-disabled=true]")) continue;
  const back = behind(element);
  const [a, b] = [luminance(over(rgba(style.color), back)), luminance(back)];
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  const size = parseFloat(style.fontSize);
  const big = size >= 24 || (Number(style.fontWeight) >= 700 && size >= 18.66);
  if (ratio < (big ? large : normal))
    low.push([Number(ratio.toFixed(2)), `${element.tagName}.${element.className}`, text]);
}
return low;"""


def emulate_scheme(driver: WebDriver, scheme: str) -> None:
    """The page as in ``scheme`` ("light" or "dark"), with reduced motion too: without it,
    colours read the moment the scheme changes are those of the start of the buttons'
    transitions."""
    features = {"prefers-color-scheme": scheme, "prefers-reduced-motion": "reduce"}
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": name, "value": value} for name, value in features.items()]},
    )


def answered_in(driver: WebDriver, server_url: str, clips: Clips, scheme: str) -> None:
    """The page with an answer on it (David's clip), every part shown, in colour ``scheme``."""
    open_page(driver, server_url)
    upload(driver, clips.david)
    emulate_scheme(driver, scheme)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_stands_out_from_its_background(
    driver: WebDriver, server_url: str, clips: Clips, scheme: str
) -> None:
    answered_in(driver, server_url, clips, scheme)

    assert driver.execute_script(LOW_CONTRAST, MIN_CONTRAST, MIN_CONTRAST_LARGE) == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_a_button_under_the_pointer_keeps_its_text_standing_out(
    driver: WebDriver, server_url: str, clips: Clips, scheme: str
) -> None:
    answered_in(driver, server_url, clips, scheme)
    buttons = [b for b in driver.find_elements(By.CSS_SELECTOR, ".button")
               if b.is_displayed() and b.get_attribute("aria-disabled") != "true"]  # fmt: skip
    background = "return getComputedStyle(arguments[0]).backgroundColor"

    low, unchanged = {}, []
    for button in buttons:
        resting = driver.execute_script(background, button)
        ActionChains(driver).move_to_element(button).perform()
        if driver.execute_script(background, button) == resting:
            unchanged.append(button.text)  # the pointer must show on the button
        low[button.text] = driver.execute_script(LOW_CONTRAST, MIN_CONTRAST, MIN_CONTRAST_LARGE)

    assert sorted(low) == ["Choose a file…", "Choose files…", "Listen live", "Record",
                           "Record a take"]  # fmt: skip
    assert (low, unchanged) == ({button: [] for button in low}, [])


# Every tab stop smaller than arguments[0] CSS px either way, as [name, width, height]: a
# visually hidden file input by the label that stands for it; links within a sentence are
# left out, as WCAG leaves them out.
SMALL_TARGETS = """const least = arguments[0];
const stops = [...document.querySelectorAll("a[href], button, input, summary, [tabindex]")]
  .filter((e) => e.tabIndex >= 0 && e.checkVisibility())
  .map((e) => (e.matches(".visually-hidden") ? document.querySelector(`label[for="${e.id}"]`) : e))
  .filter((e) => getComputedStyle(e).display !== "inline");
return stops.map((e) => [e.getAttribute("aria-label") || e.textContent.trim() || e.id,
                         e.getBoundingClientRect().width, e.getBoundingClientRect().height])
  .filter(([, width, height]) => width < least || height < least);"""


@pytest.mark.parametrize(
    ("width", "height", "scale", "mobile"),
    [(360, 740, 1, True), (640, 450, 2, False)],  # a phone; a 1280 px window at 200 % zoom
    ids=["phone-360", "zoom-200"],
)
def test_a_small_screen_shows_everything_within_its_width_with_targets_big_enough(
    driver: WebDriver, server_url: str, clips: Clips, width: int, height: int, scale: int,
    mobile: bool,
) -> None:  # fmt: skip
    open_page(driver, server_url)
    upload(driver, clips.david)
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": mobile},
    )
    time.sleep(0.3)  # the drawings redraw at the new width

    assert horizontal_overflow(driver) == 0
    assert driver.execute_script(SMALL_TARGETS, MIN_TARGET_PX) == []


# ---- the keyboard alone -----------------------------------------------------------------------


def tab_to(driver: WebDriver, element_id: str, *, most: int = len(TAB_STOPS)) -> None:
    """Press Tab until ``element_id`` has the focus; fail after ``most`` presses."""
    for _ in range(most):
        press(driver, Keys.TAB)
        if driver.switch_to.active_element.get_attribute("id") == element_id:
            return
    pytest.fail(f"#{element_id} was not reached in {most} presses of Tab")


# Counts the file choosers a press on file input arguments[0] opens (in window.choosers), and
# keeps them shut: a test gives the files itself, as a person would in the chooser.
COUNT_CHOOSERS = """window.choosers = 0;
document.getElementById(arguments[0]).addEventListener("click", (event) => {
  window.choosers += 1;
  event.preventDefault();
});"""


def choose_with_keyboard(driver: WebDriver, file_input: str, key: str, paths: list[Path]) -> int:
    """Press ``key`` on the focused ``file_input``, then give it ``paths``; the choosers opened."""
    driver.execute_script(COUNT_CHOOSERS, file_input)
    press(driver, key)
    opened: int = driver.execute_script("return window.choosers")
    driver.find_element(By.ID, file_input).send_keys("\n".join(str(path) for path in paths))
    return opened


def test_a_clip_is_chosen_and_answered_from_the_keyboard(
    driver: WebDriver, server_url: str, clips: Clips
) -> None:
    open_page(driver, server_url)
    tab_to(driver, "clip")

    opened = choose_with_keyboard(driver, "clip", Keys.ENTER, [clips.david])
    WebDriverWait(driver, TIMEOUT_S).until(lambda d: text_of(d, "answer-meta"))

    assert opened == 1
    assert text_of(driver, "result") == "David"
    assert focused(driver) == ("button", "Choose a file…")


# A server whose training job is done as soon as it is asked for; the real server's store and
# model stay as they are.
TRAINED_AT_ONCE = """const real = window.fetch;
const json = (body) => new Response(JSON.stringify(body), { status: 200 });
window.fetch = async (url, options = {}) => {
  if (String(url) === "/train" && options.method === "POST") return json({ job: "job1" });
  if (String(url) !== "/train/job1") return real(url, options);
  return json({ job: "job1", state: "done", progress: 1, detail: "done", model: null });
};"""


def test_a_new_voice_is_taught_from_the_keyboard(
    driver: WebDriver, server_url: str, clips: Clips
) -> None:
    open_page(driver, server_url)
    driver.execute_script(TRAINED_AT_ONCE)

    tab_to(driver, "speaker-name")
    press(driver, "Keyboard Kim")
    tab_to(driver, "take-files", most=2)
    opened = choose_with_keyboard(driver, "take-files", Keys.SPACE, clips.takes)
    WebDriverWait(driver, TIMEOUT_S).until(
        lambda d: text_of(d, "take-count") == "5 takes of Keyboard Kim: ready to train."
    )
    tab_to(driver, "train")
    press(driver, Keys.ENTER)
    wait_for_text(driver, "teach-status", "Done.")

    assert opened == 1
    assert focused(driver) == ("button", "Train")
    assert console_errors(driver) == []


# ---- motion -----------------------------------------------------------------------------------

# Every element that animates or transitions, as "tag.class: animation-name transition-duration",
# with Record drawn as it is while recording (its icon pulses), and the root's scroll behaviour.
MOVING = """document.getElementById("record").classList.add("recording");
const moves = (s) =>
  s.animationName !== "none" || s.transitionDuration.split(", ").some((d) => d !== "0s");
const moving = [...document.querySelectorAll("*")]
  .map((e) => [e, getComputedStyle(e)])
  .filter(([, s]) => moves(s))
  .map(([e, s]) => `${e.localName}.${e.className}: ${s.animationName} ${s.transitionDuration}`);
return [getComputedStyle(document.documentElement).scrollBehavior, moving];"""


def test_nothing_moves_for_someone_who_asks_for_reduced_motion(
    driver: WebDriver, server_url: str
) -> None:
    open_page(driver, server_url)
    scroll, moving = driver.execute_script(MOVING)
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-reduced-motion", "value": "reduce"}]},
    )

    assert scroll == "smooth"
    assert "span.record-icon: pulse 0.15s" in moving  # the test sees what moves otherwise
    assert driver.execute_script(MOVING) == ["auto", []]
