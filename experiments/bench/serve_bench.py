"""Throughput of `fnn-cli serve`: time to /healthz, then concurrent loopback connections posting PNG drawings.

    python3 experiments/bench/serve_bench.py --models runs/<mnist run> [--connections 8] [--duration 10] [--threads 4]

Starts `fnn-cli serve --port 0`, times it until /healthz answers, sends a few
warm-up requests, then keeps ``--connections`` keep-alive connections busy for
``--duration`` seconds, each POSTing /api/predict with a PNG: MNIST test digits
drawn like the pad's canvas does (dark ink on a transparent 280x280 canvas).
Prints startup time, predictions a second, latency percentiles and errors,
and whether each target of issue 6 holds (startup <= 3 s, >= 300/s,
p99 <= 50 ms, zero errors). The exit code is 0 either way unless the server
cannot start.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
from PIL import Image

from fnn import datasets
from fnn.training import runs

TARGETS = {"startup_s": 3.0, "per_second": 300.0, "p99_ms": 50.0, "errors": 0}


def payloads(n=64, seed=0) -> list[bytes]:
    """JSON bodies for /api/predict: MNIST test digits as transparent-canvas PNG data URLs."""
    rng = np.random.default_rng(seed)
    bodies = []
    for digit in datasets.load("mnist").x_test[:n]:
        side = int(rng.uniform(0.5, 0.9) * 280)
        top, left = rng.integers(0, 280 - side + 1, size=2)
        canvas = np.zeros((280, 280, 4), np.uint8)
        canvas[..., :3] = 17
        canvas[top : top + side, left : left + side, 3] = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC))
        buf = io.BytesIO()
        Image.fromarray(canvas, "RGBA").save(buf, "PNG")
        bodies.append(json.dumps({"image": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()}).encode())
    return bodies


def start_server(models, threads):
    """``(process, port, seconds until /healthz answered)``."""
    exe = shutil.which("fnn-cli")
    cmd = [exe] if exe else [sys.executable, "-c", "import sys; from fnn_cli.main import cli; sys.exit(cli())"]
    cmd += ["serve", "--port", "0", "--threads", str(threads)] + [a for m in models for a in ("--models", m)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if not match:
        proc.wait(10)
        sys.exit(f"fnn-cli serve did not start (printed {line!r})")
    port = int(match.group(1))
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return proc, port, time.perf_counter() - start
        except OSError:
            time.sleep(0.01)
        if time.perf_counter() - start > 30:
            proc.terminate()
            sys.exit("fnn-cli serve never answered /healthz")


def request_bytes(body: bytes) -> bytes:
    """One raw HTTP/1.1 keep-alive POST of ``body`` to /api/predict (prebuilt: the client stays cheap)."""
    head = f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def exchange(sock, f, request) -> bool:
    """Send one request, read its response; True for a 200 carrying a label."""
    sock.sendall(request)
    status = f.readline()
    length = 0
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    body = f.read(length)
    return status.startswith(b"HTTP/1.1 200") and b'"label"' in body


def connect(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock, sock.makefile("rb")


def worker(port, requests, offset, deadline, latencies, errors):
    """POST requests round-robin on one keep-alive connection until ``deadline``."""
    sock, f = connect(port)
    i = offset
    while time.perf_counter() < deadline:
        t = time.perf_counter()
        try:
            ok = exchange(sock, f, requests[i % len(requests)])
        except (OSError, ValueError):
            ok = False
            sock.close()
            sock, f = connect(port)
        if ok:
            latencies.append(time.perf_counter() - t)
        else:
            errors.append(i)
        i += 1
    sock.close()


def load(port, requests, connections, seconds):
    """``(latencies in s, errors, wall seconds)`` of ``connections`` concurrent workers for ``seconds``."""
    latencies, errors = [], []
    deadline = time.perf_counter() + seconds
    threads = [threading.Thread(target=worker, args=(port, requests, k * 7, deadline, latencies, errors)) for k in range(connections)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return np.array(latencies), len(errors), time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", help="run folders or model files (default: the latest MNIST run under runs/)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load")
    parser.add_argument("--threads", type=int, default=4, help="waitress worker threads")
    args = parser.parse_args(argv)
    models = args.models or [str(runs.latest_run(runs.DEFAULT_ROOT, "mnist") or "")]
    if not models[0]:
        sys.exit("no MNIST run under runs/: train one with `fnn-cli fit --arch 784,128,64,10` or pass --models")
    requests = [request_bytes(b) for b in payloads()]
    proc, port, startup = start_server(models, args.threads)
    try:
        load(port, requests, 2, 0.5)  # warm-up: first requests import Pillow
        latencies, errors, wall = load(port, requests, args.connections, args.duration)
    finally:
        proc.terminate()
        proc.wait(10)
    ms = latencies * 1000
    figures = {
        "startup_s": round(startup, 2),
        "per_second": round(len(latencies) / wall, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 1) if len(ms) else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 1) if len(ms) else None,
        "max_ms": round(float(ms.max()), 1) if len(ms) else None,
        "requests": len(latencies) + errors,
        "errors": errors,
    }
    print(f"fnn-cli serve, {args.threads} threads; {args.connections} connections for {args.duration:g} s, PNG payloads")
    checks = {
        "startup_s": figures["startup_s"] <= TARGETS["startup_s"],
        "per_second": figures["per_second"] >= TARGETS["per_second"],
        "p99_ms": figures["p99_ms"] is not None and figures["p99_ms"] <= TARGETS["p99_ms"],
        "errors": figures["errors"] == TARGETS["errors"],
    }
    for key, value in figures.items():
        mark = "" if key not in checks else ("  ok" if checks[key] else f"  MISSED (target {TARGETS[key]})")
        print(f"  {key:<11} {value}{mark}")
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
