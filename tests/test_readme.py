"""The README's examples run exactly as printed."""

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_compose_functions_example_runs(tmp_path):
    text = README.read_text()
    section = text[text.index("## Compose functions in Python") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "model.npz").is_file()
    loss, *_ = out.stdout.split()
    assert float(loss) < 0.5, out.stdout


def test_learn_with_fnn_example_runs(tmp_path):
    """The spiral example trains to >= 95% and draws its decision boundary."""
    text = README.read_text()
    section = text[text.index("## Learn with fnn") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}  # tiny matrices: threads only slow them
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    accuracy = float(re.fullmatch(r"training accuracy ([\d.]+)%\n", out.stdout).group(1))
    assert accuracy >= 95 and f"{accuracy}%" in section, out.stdout  # the printed figure is the one the README quotes
    assert (tmp_path / "spiral_boundary.png").stat().st_size > 10_000


def test_readme_starts_with_the_two_commands():
    lines = [ln for ln in README.read_text().splitlines() if ln.strip()][:5]
    text = "\n".join(lines)
    assert "fnn-cli fit --arch 784,128,64,10" in text
    assert "bash .ci/run" in text
    ci = (README.parent / ".ci" / "run").read_text()
    assert "python3 -m pytest -q" in ci and "python3 -m pytest -q" in text
