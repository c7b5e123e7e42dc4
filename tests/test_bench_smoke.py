"""The speed benchmark runs end to end on a tiny setting and prints every figure it promises (no timing asserted)."""

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "bench" / "speed.py"


def test_speed_benchmark_quick_run_prints_every_figure():
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--threads", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    for label in ("GEMM only", "fnn API", "fit_config", "fnn-cli fit"):
        assert re.search(rf"{re.escape(label)} +\d+\.\d+ s \(\d+\.\d+-\d+\.\d+\) +\d+\.\d+x GEMM", out), label
    assert re.search(r"PyTorch (\d\S* \(\w+ Adam.*fnn / PyTorch = \d+\.\d+|\s+not installed)", out, re.S), out
    assert re.search(r"peak RSS (\d+) MB", out) and int(re.search(r"peak RSS (\d+) MB", out).group(1)) > 10
    assert re.search(r"predict, one 784-vector +median \d+\.\d+ us .*hand-written NumPy \d+\.\d+ us", out)
    assert re.search(r"fastest of 10 windows: \d+\.\d+ us, hand-written NumPy \d+\.\d+ us in that window", out)
    assert re.search(r"predict, 1000 rows +median \d+\.\d+ ms", out)
    accuracy = float(re.search(r"fnn test accuracy +(\d\.\d+)", out).group(1))
    assert accuracy > 0.5, "four epochs on 2048 examples learn something"
    assert "BLAS threads: 1" in out and "load average" in out
    assert "weights bit-identical to the in-place loop: yes" in out


def test_augment_benchmark_prints_a_time_for_every_preset():
    script = SCRIPT.with_name("augment_speed.py")
    done = subprocess.run([sys.executable, str(script), "--reps", "2", "--batch", "16"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("digits", "digits + elastic", "photos (shift 4, flip)", "flip"):
        assert re.search(rf"{re.escape(name)} +CPU +\d+\.\d+ ms +wall +\d+\.\d+ ms", done.stdout), (name, done.stdout)
