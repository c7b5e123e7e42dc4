"""The convolution benchmark runs end to end on a tiny setting and prints every figure it promises (no timing asserted)."""

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "bench" / "conv_speed.py"


def test_conv_benchmark_quick_run_prints_the_split_for_both_nets():
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--threads", "1", "--no-torch", "--clock", "cpu"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "BLAS threads 1" in out and "clock: cpu" in out
    for net in ("lenet", "convnet"):
        section = out[out.index(f"{net}: batch 16") :]
        assert re.search(r"fnn forward\+backward +\d+\.\d+ ms \(\d+\.\d+-\d+\.\d+\)", section), net
        for part in ("im2col", "conv GEMMs", "col2im", "conv other", "pooling", "dense layers", "rest"):
            assert re.search(rf"\n    {part} +-?\d+\.\d+ ms +-?\d+\.\d+ %", section), (net, part)
        assert float(re.search(r"conv GEMMs .*? (\d+\.\d+) GFLOP/s", section).group(1)) > 0
