"""Memory of `fnn-cli serve` under load: RSS growth over 10,000 requests after a warm-up.

    python3 experiments/bench/pad_memory.py --models runs/<mnist run> [--requests 10000] [--warmup 1000] [--connections 4]

Starts `fnn-cli serve --port 0`, sends ``--warmup`` requests, reads the
server's resident set size (VmRSS in /proc), then sends ``--requests`` more
from ``--connections`` keep-alive connections: PNG drawings of MNIST test
digits, raw pixel arrays, compare views, and a share of malformed bodies
(error paths must not leak either). Prints RSS every tenth of the run, the
growth after warm-up in percent against the target (< 10%), and the figures
as JSON on the last line. Exit code 0 either way unless the server cannot start.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_bench import payloads, start_server  # noqa: E402

from fnn import datasets  # noqa: E402
from fnn.training import runs

TARGET_PERCENT = 10.0


def rss_mb(pid: int) -> float:
    """The process's resident set size in MB, from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def mixed_requests() -> list[bytes]:
    """JSON bodies: PNG drawings (with and without compare), pixel arrays, and malformed bodies."""
    pngs = payloads(48)
    x = datasets.load("mnist").x_test[:48]
    pixels = [json.dumps({"pixels": (d.reshape(-1) / 255.0).round(3).tolist()}).encode() for d in x]
    compare = [b[:-1] + b', "compare": true}' for b in pngs[:16]]
    bad = [b'{"pixels": [0.5, 0.5]}', b'{"image": "data:image/png;base64,' + base64.b64encode(b"not a png") + b'"}',
           b"{broken", b'{"pixels": ' + b"[" * 3000 + b"]" * 3000 + b"}"]
    return pngs + pixels + compare + bad * 4


def send(port, bodies, indices, errors):
    """POST ``bodies[i]`` for each ``i`` on one keep-alive connection; count transport errors and answers other than 200/400."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        for i in indices:
            conn.request("POST", "/api/predict", body=bodies[i % len(bodies)], headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            if r.status not in (200, 400):
                errors.append((i, r.status))
    except (OSError, http.client.HTTPException) as e:
        errors.append(("connection", repr(e)))
    finally:
        conn.close()


def run_requests(port, requests, first, count, connections, errors):
    """``count`` requests numbered from ``first``, spread over ``connections`` concurrent connections."""
    threads = [threading.Thread(target=send, args=(port, requests, range(first + k, first + count, connections), errors))
               for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", help="run folders or model files (default: the latest MNIST run under runs/)")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4, help="waitress worker threads")
    args = parser.parse_args(argv)
    models = args.models or [str(runs.latest_run(runs.DEFAULT_ROOT, "mnist") or "")]
    if not models[0]:
        sys.exit("no MNIST run under runs/: train one with `fnn-cli fit --arch 784,128,64,10` or pass --models")
    requests = mixed_requests()
    proc, port, _ = start_server(models, args.threads)
    errors, samples = [], []
    try:
        run_requests(port, requests, 0, args.warmup, args.connections, errors)
        base = rss_mb(proc.pid)
        step = max(1, args.requests // 10)
        for done in range(0, args.requests, step):
            run_requests(port, requests, args.warmup + done, min(step, args.requests - done), args.connections, errors)
            samples.append((done + min(step, args.requests - done), rss_mb(proc.pid)))
    finally:
        proc.terminate()
        proc.wait(10)
    base, end = round(base, 2), round(samples[-1][1], 2)
    growth = round(100 * (end / base - 1), 2)
    print(f"fnn-cli serve, {args.threads} threads; {args.warmup} warm-up requests, then {args.requests} from "
          f"{args.connections} connections ({len(requests)} distinct bodies: PNG, pixels, compare, malformed)")
    print(f"  RSS after warm-up  {base:.1f} MB")
    for n, mb in samples:
        print(f"  after {n:>6}       {mb:.1f} MB")
    verdict = "ok" if growth < TARGET_PERCENT else f"MISSED (target < {TARGET_PERCENT:g}%)"
    print(f"  growth             {growth:+.2f}%  {verdict}")
    figures = {"rss_after_warmup_mb": base, "rss_end_mb": end, "growth_percent": growth,
               "requests": args.requests, "errors": len(errors)}
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
