"""Issue 6, point 4, smoke run: the throughput script starts `fnn-cli serve`, loads it, and prints its figures.

The figures themselves (>= 300/s, p99 <= 50 ms, startup <= 3 s) are measured by
running the script for its full 10 s; they are not asserted here, because this
machine is shared. Errors must be zero even in the smoke run.
"""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "bench" / "serve_bench.py"


def test_serve_bench_smoke_run(pad_models):
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--models", str(pad_models["mnist"]), "--duration", "1", "--connections", "4"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    figures = json.loads(lines[-1])
    print("\n" + "\n".join(lines))
    assert set(figures) == {"startup_s", "per_second", "p50_ms", "p99_ms", "max_ms", "requests", "errors"}
    assert figures["errors"] == 0 and figures["requests"] > 10
    assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]
    assert any(line.strip().startswith("per_second") for line in lines)
