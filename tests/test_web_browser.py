"""Issues 6 and 19: the pad in a real browser (Debian's chromium + chromedriver, driven by Selenium 4).

One `fnn-cli serve` process on a free loopback port serves four models (two MNIST ones, a
Fashion-MNIST one and a CIFAR-10-shaped one) to one browser session. The digit test draws a
digit with real pointer moves, waits for the live prediction, checks the label and the
probability bars, switches model, opens the compare view (the other kinds listed apart),
loads a test image, uploads a PNG, clears by button and keyboard. The photo tests switch to
the Fashion and the CIFAR-shaped model: the page turns into a photo box with class names,
uploads get the server's own answer, class buttons bring test images, the model panel shows
the architecture and the confusion matrix, and the last 10 predictions are kept. Screenshots
of the three kinds (and the phone width) go to the test's tmp folder, or to
``$FNN_PAD_SCREENSHOTS`` (experiments/results/pad/ holds the committed ones). Missing browser
binaries fail the test: `.ci/run` installs them.
"""

import os
import re
import time

import numpy as np
import pytest
from kind_models import kind_models, synthetic_cifar  # noqa: F401  (session fixture)
from pad_helpers import data_url, post_json, render_drawing, serve_process
from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait
from test_web_kinds import render_fashion

from fnn import datasets

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
    "--window-size=1100,1100",
]
SEVEN = [(-70, -85), (70, -85), (-15, 95)]  # a 7: the bar, then the stem (offsets from the canvas centre)


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    """One browser session for the whole module."""
    for binary in (CHROMIUM, CHROMEDRIVER):
        assert os.access(binary, os.X_OK), f"{binary} is missing: apt-get install chromium chromium-driver (.ci/run does)"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium') / 'profile'}"]:
        options.add_argument(flag)
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield d
    d.quit()


@pytest.fixture(scope="module")
def pad(pad_models, kind_models):  # noqa: F811
    with serve_process([pad_models["mnist"], pad_models["small"], kind_models["fashion"], kind_models["shapes"]]) as (url, _):
        yield url


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    """Where screenshots go: ``$FNN_PAD_SCREENSHOTS`` if set, else a tmp folder."""
    folder = os.environ.get("FNN_PAD_SCREENSHOTS")
    if folder:
        os.makedirs(folder, exist_ok=True)
        return folder
    return str(tmp_path_factory.mktemp("screenshots"))


def waiter(d, seconds=15):
    """Waits that retry when the page redraws an element under the test (the answers re-render on every response)."""
    return WebDriverWait(d, seconds, ignored_exceptions=(StaleElementReferenceException,))


def open_pad(d, url, width=1320, height=1100):
    d.set_window_size(width, height)
    d.get(url + "/")
    WebDriverWait(d, 15).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#model option")) == 4)


def full_page_screenshot(d, path):
    """The whole page: the viewport is made as tall as the document (Chrome's device metrics), then restored."""
    width, height = d.execute_script("return [window.innerWidth, document.documentElement.scrollHeight]")
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    try:
        d.save_screenshot(path)
    finally:
        d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def text(d, id_):
    return d.find_element(By.ID, id_).text


def bars(d):
    """``[(class, percent, is_top)]`` as the page shows them."""
    rows = d.find_elements(By.CSS_SELECTOR, "#bars li")
    out = []
    for r in rows:
        value = r.find_element(By.CLASS_NAME, "value").text
        out.append((r.find_element(By.CLASS_NAME, "class").text, float(value.rstrip("%")) if value != "–" else None,
                    "top" in r.get_attribute("class")))
    return out


def stroke_path(actions, points, step=8):
    """Pointer moves along ``points`` in steps of ``step`` px (many pointermove events)."""
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        n = max(1, int(max(abs(x1 - x0), abs(y1 - y0)) / step))
        for i in range(n):
            actions.move_by_offset(round((x1 - x0) * (i + 1) / n) - round((x1 - x0) * i / n),
                                   round((y1 - y0) * (i + 1) / n) - round((y1 - y0) * i / n))


def predict_requests(d):
    return d.execute_script("return performance.getEntriesByType('resource').filter(e => e.name.endsWith('/api/predict')).length")


def test_draw_predict_switch_compare_sample_upload_clear(driver, pad, shots, tmp_path):
    d = driver
    wait = waiter(d)
    open_pad(d, pad)
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
    wait.until(lambda d: all(re.fullmatch(r"\d", r.find_element(By.TAG_NAME, "td").text)
                             for r in d.find_elements(By.CSS_SELECTOR, "#compare-body tr")))
    rows = d.find_elements(By.CSS_SELECTOR, "#compare-body tr")
    assert [r.find_element(By.TAG_NAME, "th").text.split("\n")[0] for r in rows] == ["mnist", "small"]
    assert all(re.fullmatch(r"\d+\.\d% on test", r.find_element(By.CLASS_NAME, "accuracy").text) for r in rows)
    assert "selected" in rows[1].get_attribute("class")
    assert d.find_element(By.ID, "compare-toggle").get_attribute("aria-pressed") == "true"
    others = [li.text for li in d.find_elements(By.CSS_SELECTOR, "#compare-others-list li")]
    assert others == ["fashion: Clothing, 28×28 (as Fashion-MNIST)", "shapes: Photos, 32×32 colour (as CIFAR-10)"]
    assert [o.text for o in d.find_elements(By.CSS_SELECTOR, "#model optgroup")] != []
    assert [g.get_attribute("label") for g in d.find_elements(By.CSS_SELECTOR, "#model optgroup")] == [
        "Digits, 28×28 (as MNIST)", "Clothing, 28×28 (as Fashion-MNIST)", "Photos, 32×32 colour (as CIFAR-10)"]
    Select(d.find_element(By.ID, "model")).select_by_value("mnist")
    wait.until(lambda d: "selected" in d.find_elements(By.CSS_SELECTOR, "#compare-body tr")[0].get_attribute("class"))
    wait.until(lambda d: "Test confusion matrix" in text(d, "confusion-caption"))
    assert re.search(r"\d+\.\d% right of 10,000 images, from the mnist test split", text(d, "confusion-caption"))
    assert [r.text.split()[1] for r in d.find_elements(By.CSS_SELECTOR, "#arch tbody tr")] == ["Dense", "Relu", "Dense", "Relu", "Dense"]
    assert text(d, "arch-total") == "109,386"
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#history li")) >= 2)  # the 7 by both models
    full_page_screenshot(d, os.path.join(shots, "pad-digits.png"))
    d.set_window_size(1320, 1100)

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
    digit = datasets.load("mnist").x_test[0]  # a 7
    upload = tmp_path / "seven.png"
    upload.write_bytes(render_drawing(digit, np.random.default_rng(1))[0])
    d.find_element(By.ID, "upload").send_keys(str(upload))
    wait.until(lambda d: not d.find_element(By.ID, "sample-info").is_displayed() and text(d, "label") == "7")
    assert text(d, "status") == ""
    # A test image of a chosen class.
    d.find_element(By.CSS_SELECTOR, "#classes button[data-class='3']").click()
    wait.until(lambda d: re.fullmatch(r"Test image #\d+ \(mnist\): true 3, predicted \d [✓✗]", text(d, "sample-info")))
    print(f"\nscreenshots in {shots}")

    # Phone width (a tall window, to see the whole page): nothing overflows sideways, the canvas still fits.
    d.set_window_size(390, 1800)
    wait.until(lambda d: d.execute_script("return window.innerWidth") <= 390)
    d.find_element(By.ID, "sample").click()
    wait.until(lambda d: d.find_element(By.ID, "sample-info").is_displayed())
    assert d.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    assert d.find_element(By.ID, "canvas").size["width"] <= 280
    d.save_screenshot(os.path.join(shots, "pad-phone.png"))


def test_controls_are_reachable_by_keyboard_and_labelled(driver, pad):
    d = driver
    open_pad(d, pad)
    reached = []
    for _ in range(24):
        ActionChains(d).send_keys(Keys.TAB).perform()
        reached.append(d.switch_to.active_element.get_attribute("id"))
    assert {"canvas", "stroke", "clear", "sample", "upload", "model", "compare-toggle"} <= set(reached), reached
    assert reached.index("model") < reached.index("canvas") < reached.index("sample")  # the model first: it sets the page
    names = d.execute_script(
        """return Array.from(document.querySelectorAll('button, select, input, canvas')).map(
             e => [e.id, (e.labels && e.labels.length ? e.labels[0].textContent : e.getAttribute('aria-label') || e.textContent).trim()])"""
    )
    assert all(name for _, name in names), names
    # The compare toggle works from the keyboard.
    d.find_element(By.ID, "compare-toggle").send_keys(Keys.ENTER)
    WebDriverWait(d, 5).until(lambda d: d.find_element(By.ID, "compare").is_displayed())
    assert d.switch_to.active_element.get_attribute("id") == "compare-toggle"


def photo_mode(d, wait, model, classes):
    Select(d.find_element(By.ID, "model")).select_by_value(model)
    wait.until(lambda d: [b.text for b in d.find_elements(By.CSS_SELECTOR, "#classes button")] == classes)
    assert d.find_element(By.TAG_NAME, "body").get_attribute("data-mode") == "photo"
    assert text(d, "input-title") == "Photo" and not d.find_element(By.ID, "stroke").is_displayed()
    assert d.find_element(By.CSS_SELECTOR, "label[for=camera]").is_displayed()
    assert d.find_element(By.ID, "camera").get_attribute("capture") == "environment"
    assert text(d, "confidence") == "Upload a photo" and "photo" in d.find_element(By.ID, "canvas").get_attribute("aria-label")


def preview_pixels(d):
    shape = d.execute_script("const c = document.getElementById('preview'); return [c.height, c.width]")
    flat = d.execute_script(
        "const c = document.getElementById('preview'); return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)"
    )
    return np.array(flat).reshape(*shape, 4)


def test_fashion_model_reads_uploads_and_shows_class_names(driver, pad, shots, tmp_path):
    d = driver
    wait = waiter(d)
    open_pad(d, pad)
    classes = list(datasets.REGISTRY["fashion-mnist"].classes)
    photo_mode(d, wait, "fashion", classes)
    assert [b.find_element(By.CLASS_NAME, "class").text for b in d.find_elements(By.CSS_SELECTOR, "#bars li")] == classes
    wait.until(lambda d: [r.text.split()[1] for r in d.find_elements(By.CSS_SELECTOR, "#arch tbody tr")] == ["Dense", "Relu", "Dense"])
    assert text(d, "arch-total") == "101,770"
    facts = text(d, "model-facts")
    assert "fashion-mnist" in facts and "Clothing, 28×28" in facts and re.search(r"Trained\n20\d\d-\d\d-\d\d \d\d:\d\d", facts)
    # An upload: a Fashion test image as a product photo, on white; the page shows the server's answer.
    item = datasets.load("fashion-mnist").x_test[0]  # an ankle boot
    upload, _ = render_fashion(item, np.random.default_rng(4))
    (tmp_path / "boot.png").write_bytes(upload)
    want = post_json(pad + "/api/predict", {"image": data_url(upload), "model": "fashion"})[1]
    d.find_element(By.ID, "upload").send_keys(str(tmp_path / "boot.png"))
    wait.until(lambda d: text(d, "label") == want["class"])
    assert text(d, "confidence") == f"{100 * want['confidence']:.1f}% confident" + (" (unsure)" if want["confidence"] < 0.5 else "")
    assert "word" in d.find_element(By.ID, "label").get_attribute("class")
    assert d.find_element(By.ID, "canvas").get_attribute("class") == "has-photo"
    lit = preview_pixels(d)
    assert lit.shape == (28, 28, 4) and lit[..., 0].max() > 200 and (lit[..., 0] > 50).mean() > 0.2
    # Test images by class, with their true labels; the compare view holds the Fashion model only.
    d.find_element(By.CSS_SELECTOR, "#classes button[data-class='1']").click()
    wait.until(lambda d: re.fullmatch(r"Test image #\d+ \(fashion-mnist\): true Trouser, predicted .+ [✓✗]", text(d, "sample-info")))
    d.find_element(By.ID, "compare-toggle").click()

    def compared(d):
        return [r.find_element(By.TAG_NAME, "th").text.split("\n")[0] for r in d.find_elements(By.CSS_SELECTOR, "#compare-body tr")]

    wait.until(lambda d: compared(d) == ["fashion"])
    wait.until(lambda d: "Test confusion matrix" in text(d, "confusion-caption"))
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#history li")) == 2)
    history = [li.text for li in d.find_elements(By.CSS_SELECTOR, "#history li")]
    assert re.fullmatch(r".+\n\d+\.\d% · fashion\ntrue Trouser [✓✗]", history[0]) and history[1].startswith(want["class"] + "\n")
    full_page_screenshot(d, os.path.join(shots, "pad-fashion.png"))


def test_cifar_shaped_model_reads_colour_photos_and_keeps_the_last_10(driver, pad, shots, tmp_path):
    from kind_models import CLASSES
    from pad_helpers import png

    d = driver
    wait = waiter(d)
    open_pad(d, pad)
    photo_mode(d, wait, "shapes", CLASSES)
    assert text(d, "preview-caption") == "What the network sees: the 32×32 colour input after preprocessing"
    x, y = synthetic_cifar(12, seed=2)  # the run's own test images
    for i in range(11):  # 11 uploads: the history keeps the last 10, newest first
        (tmp_path / f"p{i}.png").write_bytes(png(np.asarray(Image.fromarray(x[i]).resize((96, 96), Image.Resampling.BICUBIC))))
        want = post_json(pad + "/api/predict", {"image": data_url((tmp_path / f"p{i}.png").read_bytes()), "model": "shapes"})[1]
        d.find_element(By.ID, "upload").send_keys(str(tmp_path / f"p{i}.png"))
        shown = min(i + 1, 10)
        wait.until(lambda d, n=shown, label=want["class"]: len(d.find_elements(By.CSS_SELECTOR, "#history li")) == n
                   and d.find_element(By.CSS_SELECTOR, "#history li strong").text == label)
        assert text(d, "label") == want["class"]
    history = d.find_elements(By.CSS_SELECTOR, "#history li")
    assert len(history) == 10
    rgb = preview_pixels(d)[..., :3].astype(int)
    assert rgb.shape == (32, 32, 3) and np.abs(rgb[..., 0] - rgb[..., 2]).max() > 60  # in colour
    d.find_element(By.CSS_SELECTOR, f"#classes button[data-class='{int(y[11])}']").click()
    wait.until(lambda d: f"true {CLASSES[int(y[11])]}" in text(d, "sample-info"))
    wait.until(lambda d: "from the shapes test split" in text(d, "confusion-caption"))
    assert d.find_element(By.CSS_SELECTOR, "#history li strong").text == text(d, "label")
    full_page_screenshot(d, os.path.join(shots, "pad-rgb32.png"))
