"""Issue 8, point 3: the pad answers the same in parallel as serially, and its memory stays flat.

800 requests (drawings as PNG data URLs, raw pixels, both models, compare
views, and some malformed bodies) go first one at a time, then from 8 threads
at once (100 each, released together) to a real `fnn-cli serve --threads 8`
process (the session's shared one, see conftest.py); every answer, status and body, must be exactly the serial one (only
the timing field ``ms`` differs). The RSS figure comes from
experiments/bench/pad_memory.py, smoke-run here.
"""

import http.client
import json
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from pad_helpers import data_url, render_drawing

THREADS, PER_THREAD = 8, 100
SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "bench" / "pad_memory.py"


def bodies(x, n, seed=8):
    """``n`` seeded request bodies from the digits ``x``: mostly valid (images, pixels, either model, compare), some malformed."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        digit = x[int(rng.integers(len(x)))]
        kind = rng.choice(["image", "pixels", "bad"], p=[0.45, 0.45, 0.1])
        if kind == "image":
            body = {"image": data_url(render_drawing(digit, rng)[0])}
        elif kind == "pixels":
            body = {"pixels": np.round(digit.reshape(-1) / 255.0, 4).tolist()}
        else:
            body = [{"pixels": [0.5] * 783}, {"image": "data:image/png;base64,AAAA"}, {"model": "nope", "pixels": []},
                    {"pixels": [2.0] * 784}][int(rng.integers(4))]
        if kind != "bad":
            body["model"] = str(rng.choice(["mnist", "small"]))
            body["compare"] = bool(rng.random() < 0.3)
        out.append(json.dumps(body).encode())
    return out


def ask(conn, body):
    conn.request("POST", "/api/predict", body=body, headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    answer = json.loads(r.read())
    answer.pop("ms", None)
    for row in answer.get("compare", []):
        row.pop("ms", None)
    return r.status, answer


def test_8_threads_x_100_predictions_equal_the_serial_answers(pad_server, mnist):
    requests = bodies(mnist.x_test, THREADS * PER_THREAD)
    host, port = urlparse(pad_server).hostname, urlparse(pad_server).port
    conn = http.client.HTTPConnection(host, port, timeout=60)
    serial = [ask(conn, body) for body in requests]
    conn.close()

    parallel = [None] * len(requests)
    start = threading.Barrier(THREADS)
    failures = []

    def client(t):
        c = http.client.HTTPConnection(host, port, timeout=60)
        try:
            start.wait()
            for i in range(t * PER_THREAD, (t + 1) * PER_THREAD):
                parallel[i] = ask(c, requests[i])
        except Exception as e:  # noqa: BLE001 -- reported below
            failures.append(repr(e))
        finally:
            c.close()

    threads = [threading.Thread(target=client, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not failures, failures[:3]
    statuses = [s for s, _ in serial]
    assert statuses.count(200) > 600 and set(statuses) <= {200, 400}
    assert sum(a.get("compare") is not None for _, a in serial) > 100
    differ = [i for i in range(len(requests)) if parallel[i] != serial[i]]
    assert differ == [], f"{len(differ)} answers differ, e.g. request {differ[:1]}"


def test_pad_memory_benchmark_smoke_run(pad_models):
    """The script runs end to end and prints its figures; the 10,000-request figure is in the README."""
    out = subprocess.run([sys.executable, str(SCRIPT), "--models", str(pad_models["small"]), "--warmup", "50",
                          "--requests", "200", "--connections", "2"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    print("\n" + out.stdout)
    assert figures["requests"] == 200 and figures["errors"] == 0
    assert figures["rss_after_warmup_mb"] > 10 and figures["rss_end_mb"] > 10
    assert figures["growth_percent"] == round(100 * (figures["rss_end_mb"] / figures["rss_after_warmup_mb"] - 1), 2)
