"""Issue 6, point 2: the pad in a real browser (Debian's chromium + chromedriver, driven by Selenium 4).

The test drives the session's `fnn-cli serve` process (see conftest.py): it
draws a digit with real pointer moves, waits for the live prediction, checks
the label and the probability bars, switches model, opens the compare view,
loads a test image, uploads a PNG, clears by button and keyboard, and saves
screenshots (desktop and phone width) to the test's tmp folder. One Chromium
serves the module's tests. Missing browser binaries fail the test: `.ci/run`
installs them.
"""

import os
import re
import time

import numpy as np
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from pad_helpers import render_drawing

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WINDOW = (1100, 1100)  # the desktop size every test starts from
SEVEN = [(-70, -85), (70, -85), (-15, 95)]  # a 7: the bar, then the stem (offsets from the canvas centre)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One headless Chromium for the module (a start costs seconds)."""
    for binary in (CHROMIUM, CHROMEDRIVER):
        assert os.access(binary, os.X_OK), f"{binary} is missing: apt-get install chromium chromium-driver (.ci/run does)"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium") / "profile"
    for flag in FLAGS + ["--window-size={},{}".format(*WINDOW), f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield d
    d.quit()


@pytest.fixture()
def driver(browser):
    """The browser on a blank page at the desktop size the tests start from."""
    browser.get("about:blank")
    browser.set_window_size(*WINDOW)
    return browser


def text(d, id_):
    return d.find_element(By.ID, id_).text


def bars(d):
    """``[(class, percent, is_top)]`` as the page shows them."""
    rows = d.find_elements(By.CSS_SELECTOR, "#bars li")
    out = []
    for r in rows:
        value = r.find_element(By.CLASS_NAME, "value").text
        out.append((r.find_element(By.CLASS_NAME, "class").text, float(value.rstrip("%")) if value != "–" else None, "top" in r.get_attribute("class")))
    return out


def stroke_path(actions, points, step=8):
    """Pointer moves along ``points`` in steps of ``step`` px (many pointermove events)."""
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        n = max(1, int(max(abs(x1 - x0), abs(y1 - y0)) / step))
        for i in range(n):
            actions.move_by_offset(round((x1 - x0) * (i + 1) / n) - round((x1 - x0) * i / n), round((y1 - y0) * (i + 1) / n) - round((y1 - y0) * i / n))


def predict_requests(d):
    return d.execute_script("return performance.getEntriesByType('resource').filter(e => e.name.endsWith('/api/predict')).length")


def test_draw_predict_switch_compare_sample_upload_clear(driver, pad_server, tmp_path, mnist):
    d = driver
    wait = WebDriverWait(d, 15)
    d.get(pad_server + "/")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#model option")) == 2)
    assert text(d, "label") == "?" and text(d, "confidence") == "Draw a digit"
    canvas = d.find_element(By.ID, "canvas")
    assert canvas.size == {"width": 280, "height": 280}

    # Draw the bar of a 7 and hold the pointer: the live prediction arrives while drawing.
    start = time.perf_counter()
    actions = ActionChains(d, duration=20)
    actions.move_to_element_with_offset(canvas, *SEVEN[0]).click_and_hold()
    stroke_path(actions, SEVEN[:2])
    actions.perform()
    wait.until(lambda d: text(d, "label") != "?")
    actions = ActionChains(d, duration=20)
    stroke_path(actions, SEVEN[1:])
    actions.release().perform()
    seconds = time.perf_counter() - start
    wait.until(lambda d: predict_requests(d) >= 2)
    time.sleep(0.5)  # let the last, trailing request land
    requests = predict_requests(d)
    assert requests <= 10 * seconds + 2, (requests, seconds)  # throttled to ~10 a second

    assert text(d, "label") == "7"
    assert re.fullmatch(r"\d+\.\d% confident( \(unsure\))?", text(d, "confidence"))
    shown = bars(d)
    assert [c for c, _, _ in shown] == [str(i) for i in range(10)]
    assert abs(sum(p for _, p, _ in shown) - 100) < 1
    assert [c for c, _, top in shown if top] == ["7"]
    assert text(d, "confidence").startswith(f"{max(p for _, p, _ in shown):.1f}%")
    preview = d.execute_script(
        "const c = document.getElementById('preview'); return Array.from(c.getContext('2d').getImageData(0, 0, 28, 28).data)"
    )
    lit = np.array(preview).reshape(28, 28, 4)[..., 0]
    assert lit.max() > 200 and (lit > 50).sum() > 30  # the 28x28 input is shown

    # Switch model: the bars change to the second model's answer.
    before = bars(d)
    Select(d.find_element(By.ID, "model")).select_by_value("small")
    wait.until(lambda d: bars(d) != before)
    assert text(d, "label") == "7"

    # Compare view: both models side by side, the selected one marked.
    d.find_element(By.ID, "compare-toggle").click()
    wait.until(lambda d: d.find_element(By.ID, "compare").is_displayed())
    wait.until(lambda d: all(re.fullmatch(r"\d", r.find_element(By.TAG_NAME, "td").text) for r in d.find_elements(By.CSS_SELECTOR, "#compare-body tr")))
    rows = d.find_elements(By.CSS_SELECTOR, "#compare-body tr")
    assert [r.find_element(By.TAG_NAME, "th").text.split("\n")[0] for r in rows] == ["mnist", "small"]
    assert all(re.fullmatch(r"\d+\.\d% on test", r.find_element(By.CLASS_NAME, "accuracy").text) for r in rows)
    assert "selected" in rows[1].get_attribute("class")
    assert d.find_element(By.ID, "compare-toggle").get_attribute("aria-pressed") == "true"
    d.save_screenshot(str(tmp_path / "pad-desktop.png"))

    # Clear with the button, then draw again and clear with the keyboard.
    d.find_element(By.ID, "clear").click()
    assert text(d, "label") == "?" and text(d, "confidence") == "Draw a digit"
    assert d.execute_script("return document.getElementById('canvas').toDataURL()") == d.execute_script(
        "const c = document.createElement('canvas'); c.width = c.height = 280; return c.toDataURL()"
    )
    actions = ActionChains(d, duration=20)
    actions.move_to_element_with_offset(canvas, 0, -90).click_and_hold()
    stroke_path(actions, [(0, -90), (0, 90)])
    actions.release().perform()
    wait.until(lambda d: text(d, "label") == "1")
    ActionChains(d).send_keys(Keys.ESCAPE).perform()
    wait.until(lambda d: text(d, "label") == "?")

    # A tap leaves a dot: near-blank, so no label, only an honest answer.
    ActionChains(d).move_to_element(canvas).click().perform()
    wait.until(lambda d: text(d, "confidence") == "Too little ink to read: draw a digit")
    assert text(d, "label") == "?" and all(p is None for _, p, _ in bars(d))

    # A random test image shows its true and predicted labels.
    d.find_element(By.ID, "sample").click()
    wait.until(lambda d: d.find_element(By.ID, "sample-info").is_displayed())
    assert re.fullmatch(r"Test image #\d+ \(mnist\): true \d, predicted \d [✓✗]", text(d, "sample-info"))

    # Upload a PNG: the same preprocessing, the same answer.
    digit = mnist.x_test[0]  # a 7
    upload = tmp_path / "seven.png"
    upload.write_bytes(render_drawing(digit, np.random.default_rng(1))[0])
    d.find_element(By.ID, "upload").send_keys(str(upload))
    wait.until(lambda d: not d.find_element(By.ID, "sample-info").is_displayed() and text(d, "label") == "7")
    assert text(d, "status") == ""
    print(f"\nscreenshots: {tmp_path / 'pad-desktop.png'}, {tmp_path / 'pad-phone.png'}")

    # Phone width (a tall window, to see the whole page): nothing overflows sideways, the canvas still fits.
    d.set_window_size(390, 1800)
    wait.until(lambda d: d.execute_script("return window.innerWidth") <= 390)
    d.find_element(By.ID, "sample").click()
    wait.until(lambda d: d.find_element(By.ID, "sample-info").is_displayed())
    assert d.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    assert d.find_element(By.ID, "canvas").size["width"] <= 280
    d.save_screenshot(str(tmp_path / "pad-phone.png"))


def test_controls_are_reachable_by_keyboard_and_labelled(driver, pad_server):
    d = driver
    d.get(pad_server + "/")
    WebDriverWait(d, 15).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#model option")) == 2)
    reached = []
    for _ in range(12):
        ActionChains(d).send_keys(Keys.TAB).perform()
        reached.append(d.switch_to.active_element.get_attribute("id"))
    assert {"canvas", "stroke", "clear", "sample", "upload", "model", "compare-toggle"} <= set(reached), reached
    names = d.execute_script(
        """return Array.from(document.querySelectorAll('button, select, input, canvas')).map(
             e => [e.id, (e.labels && e.labels.length ? e.labels[0].textContent : e.getAttribute('aria-label') || e.textContent).trim()])"""
    )
    assert all(name for _, name in names), names
    # The compare toggle works from the keyboard.
    d.find_element(By.ID, "compare-toggle").send_keys(Keys.ENTER)
    WebDriverWait(d, 5).until(lambda d: d.find_element(By.ID, "compare").is_displayed())
    assert d.switch_to.active_element.get_attribute("id") == "compare-toggle"
