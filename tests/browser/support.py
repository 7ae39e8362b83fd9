"""What the browser tests share: Debian's Chromium driven by Selenium with a fake microphone, a
real server in a subprocess, the console's errors, and screenshots in ``artifacts/browser/``.

Importing this skips the importing test module where Chromium or its driver is missing.
"""

from __future__ import annotations

import base64
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
    pytest.skip(
        f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER})",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402  (after the skip: selenium is no use without them)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.chrome.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

__all__ = [
    "ARTIFACTS",
    "DESKTOP",
    "PHONE",
    "chromium",
    "console_errors",
    "horizontal_overflow",
    "running_server",
    "save_full_page",
    "text_of",
    "texts_of",
]

ARTIFACTS = ROOT / "artifacts" / "browser"
PHONE = (390, 844)  # CSS px
DESKTOP = (1280, 900)
READY_TIMEOUT_S = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.25)
    pytest.fail(f"the server was not ready after {READY_TIMEOUT_S:g} s:\n{log.read_text()}")


@contextmanager
def running_server(env: dict[str, str], log: Path) -> Iterator[str]:
    """A server on a free loopback port under ``env``, its output in ``log``; yields its URL
    once ``/ready`` answers, and stops it after."""
    port = _free_port()
    command = [sys.executable, "-m", "uvicorn", "service.main:app_from_env", "--factory",
               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def chromium(microphone: Path, *, loop: bool, flags: tuple[str, ...] = ()) -> Iterator[WebDriver]:
    """Headless Chromium whose microphone plays the WAV file ``microphone``: over and over with
    ``loop``, else once from when the page opens the microphone, then silence; ``flags`` are
    more command-line switches."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone}{'' if loop else '%noloop'}",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
        *flags,
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager must not download anything.
    browser = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield browser
    finally:
        browser.quit()


def console_errors(driver: WebDriver, *, allowed: re.Pattern[str] | None = None) -> list[str]:
    """The console's errors since the last look, less those ``allowed`` matches."""
    entries = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return [
        entry["message"]
        for entry in entries
        if entry["level"] == "SEVERE" and not (allowed and allowed.search(entry["message"]))
    ]


def horizontal_overflow(driver: WebDriver) -> int:
    """CSS px by which the page is wider than its layout viewport, 0 when it fits. Measured
    against the root's clientWidth, not innerWidth: under mobile emulation a page too wide
    widens innerWidth with it, so that it always seems to fit."""
    script = "const root = document.documentElement; return root.scrollWidth - root.clientWidth"
    overflow: int = driver.execute_script(script)
    return max(overflow, 0)


def text_of(driver: WebDriver, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def texts_of(driver: WebDriver, selector: str) -> list[str]:
    """The rendered text of every element ``selector`` matches, read in one script: the page
    replaces whole lists when it redraws them, so elements found first and read one by one
    after may be gone by then (a stale element reference)."""
    script = "return [...document.querySelectorAll(arguments[0])].map((e) => e.innerText)"
    texts = driver.execute_script(script, selector)
    return [str(text) for text in texts]


def save_full_page(
    driver: WebDriver, name: str, size: tuple[int, int], *, dark: bool = False
) -> Path:
    """A screenshot of the whole page laid out at ``size`` CSS px, in artifacts/browser/."""
    width, height = size
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )
    scheme = "dark" if dark else "light"
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
    )
    try:
        driver.execute_script("window.scrollTo(0, 0)")  # the sticky header belongs at the top
        time.sleep(0.3)  # the drawings redraw at the new width
        page_height = driver.execute_script("return document.documentElement.scrollHeight")
        shot = driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": page_height, "scale": 1},
            },
        )
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path
