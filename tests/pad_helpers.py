"""Helpers for the pad's tests: PNG encoding, digits rendered as canvas drawings, a real server process."""

import base64
import contextlib
import io
import json
import re
import selectors
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
from PIL import Image

CANVAS = 280
SERVE = [sys.executable, "-c", "import sys; from fnn_cli.main import cli; sys.exit(cli())", "serve"]


def png(array, mode=None) -> bytes:
    """A uint8 array ``(H, W)`` or ``(H, W, 3|4)`` as PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8), mode).save(buf, "PNG", compress_level=1)  # lossless at any level; 1 is fastest
    return buf.getvalue()


def data_url(data: bytes, kind="png") -> str:
    return f"data:image/{kind};base64," + base64.b64encode(data).decode()


def render_drawing(digit, rng, canvas=CANVAS):
    """An MNIST digit ``(28, 28)`` uint8 drawn on a canvas: ``(png bytes, dark_on_light)``.

    The digit is scaled (anti-aliased) to 0.5-0.9 of the canvas at a random
    offset, as white ink on black or dark ink on white.
    """
    side = int(round(rng.uniform(0.5, 0.9) * canvas))
    top, left = rng.integers(0, canvas - side + 1, size=2)
    big = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC))
    page = np.zeros((canvas, canvas), np.uint8)
    page[top : top + side, left : left + side] = big
    dark_on_light = bool(rng.random() < 0.5)
    return png(255 - page if dark_on_light else page), dark_on_light


def post_json(url, body, timeout=10):
    """``(status, parsed JSON or None)`` for a POST of ``body`` (bytes sent as they are, else JSON-encoded)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        payload = e.read()
        try:
            return e.code, json.loads(payload)
        except ValueError:
            return e.code, None


def get_json(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, json.loads(r.read())


@contextlib.contextmanager
def serve_process(models, *args, timeout=30):
    """Run ``fnn-cli serve --models ... --port 0`` and yield ``(base_url, seconds until /healthz answered)``."""
    start = time.perf_counter()
    cmd = [*SERVE, "--models", ",".join(str(m) for m in models), "--port", "0", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = _first_line(proc, timeout)
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, f"serve printed {line!r}; stderr: {proc.stderr.read() if proc.poll() is not None else ''}"
        url = f"http://127.0.0.1:{match.group(1)}"
        while True:
            try:
                if get_json(url + "/healthz", timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            assert time.perf_counter() - start < timeout, "server never answered /healthz"
            time.sleep(0.02)
        yield url, time.perf_counter() - start
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def _first_line(proc, timeout):
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise AssertionError(f"serve printed nothing in {timeout} s")
    return proc.stdout.readline()
