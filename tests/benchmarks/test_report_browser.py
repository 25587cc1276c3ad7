"""report.html in a real browser: headless Chromium (Debian's, with its WebDriver; `make test` installs both)
opens the page from file://, every audio element loads with its clip's duration, every image decodes, clicking a
header sorts its table, and a full-page screenshot is kept as a test artefact ($CCS_TEST_ARTEFACTS, else the
test's tmp folder; the path is printed). Without Chromium this test FAILS: CI must run it."""

from __future__ import annotations

import base64
import os
import shutil
import time
from pathlib import Path

import pytest

CHROMIUM = ("chromium", "chromium-browser")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1000")


def _browser(profile: Path):
    binary = next((p for name in CHROMIUM if (p := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.fail("Chromium and chromedriver are needed for the report test: `make browser` installs them "
                    "(apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def _wait(driver, script: str, timeout_s: float = 30.0):
    """Poll ``script`` (returning a truthy value when done) until it is truthy; the last value either way."""
    end = time.monotonic() + timeout_s
    value = driver.execute_script(script)
    while not value and time.monotonic() < end:
        time.sleep(0.2)
        value = driver.execute_script(script)
    return value


METHODS = "table[id^=methods-]"  # this run's methods and the paper's rows


def _sort_values(driver, col: int) -> list:
    return driver.execute_script(
        "return Array.from(document.querySelector(METHODS).tBodies[0].rows).map("
        "function(r){var v=r.cells[COL].getAttribute('data-v'); return v===''?null:parseFloat(v);});"
        .replace("METHODS", repr(METHODS)).replace("COL", str(col)))


def _first_column(driver) -> list[str]:
    return driver.execute_script(f"return Array.from(document.querySelector({METHODS!r}).tBodies[0].rows)"
                                 ".map(function(r){return r.cells[0].textContent;});")


def test_report_html_in_headless_chromium(finished_run, tmp_path):
    page = finished_run / "report.html"
    driver = _browser(tmp_path / "profile")
    try:
        driver.get(page.resolve().as_uri())
        n_audio = driver.execute_script("return document.querySelectorAll('audio').length")
        assert n_audio >= 2 * (2 + 2 * 3)  # >= 2 clips: mono, truth, 3 predictions and their errors
        ready = _wait(driver, "return Array.from(document.querySelectorAll('audio')).every("
                              "function(a){return a.readyState >= 1;})")
        audio = driver.execute_script("return Array.from(document.querySelectorAll('audio')).map(function(a){"
                                      "return [a.getAttribute('src'), a.duration, parseFloat(a.dataset.duration),"
                                      " a.error && a.error.code];})")
        assert ready, [a for a in audio if a[3] or a[1] != a[1]]
        for src, duration, want, error in audio:
            assert error is None and duration == pytest.approx(want, abs=1e-3) and want == 10.0, src

        images = _wait(driver, "var i = Array.from(document.images); return i.every(function(x){return x.complete;})"
                               " && i.map(function(x){return [x.getAttribute('src'), x.naturalWidth];});")
        assert images and len(images) >= 3, images
        assert all(width > 0 for _, width in images), [src for src, width in images if not width]

        # sorting: the first table (methods and the paper's rows); column 2 is STFT
        head = driver.find_element("css selector", METHODS).find_elements("css selector", "th")[2]
        assert head.text.startswith("STFT")
        before = _first_column(driver)
        head.click()
        ascending, order_up = _sort_values(driver, 2), _first_column(driver)
        head.click()
        descending, order_down = _sort_values(driver, 2), _first_column(driver)
        known = [v for v in ascending if v is not None]
        assert known == sorted(known) and len(set(known)) > 1
        assert [v for v in descending if v is not None] == sorted(known, reverse=True)
        assert order_up != before or order_down != before
        assert sorted(order_up) == sorted(before)

        artefacts = Path(os.environ.get("CCS_TEST_ARTEFACTS", tmp_path))
        artefacts.mkdir(parents=True, exist_ok=True)
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        target = artefacts / "report-html.png"
        target.write_bytes(base64.b64decode(shot["data"]))
        assert target.stat().st_size > 10_000
        print(f"screenshot of {page}: {target}")
    finally:
        driver.quit()
