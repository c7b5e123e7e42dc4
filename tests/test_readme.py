"""The README's examples run exactly as printed."""

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_train_from_python_examples_run(tmp_path):
    """The three examples of 'Train from Python', run one after the other as a user pastes them."""
    text = README.read_text()
    section = text[text.index("## Train from Python") : text.index("## Learn with fnn")]
    fit_example, layer_example, _state_example, step_example = re.findall(r"```python\n(.*?)```", section, re.S)
    out = subprocess.run([sys.executable, "-c", fit_example + layer_example + step_example], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "model.npz").is_file()
    lines = out.stdout.strip().splitlines()
    assert "total: 259 parameters" in out.stdout  # the summary of 4-32-3: 4*32+32 + 32*3+3
    val_accuracy = float(lines[-2].split()[0])
    assert val_accuracy > 0.9, out.stdout
    assert "'accuracy'" in lines[-1] and "'loss'" in lines[-1]


def test_layers_with_state_example_runs(tmp_path):
    """The BatchNorm CNN of 'Layers with state' trains, saves its running averages, loads and predicts."""
    text = README.read_text()
    section = text[text.index("### Layers with state") : text.index("## Learn with fnn")]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    out = subprocess.run([sys.executable, "-c", "import numpy as np\nimport fnn\n" + code], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    import numpy as np

    import fnn

    loaded = fnn.load_model(tmp_path / "cnn.npz")
    averages = fnn.tree.tree_leaves(loaded.state)  # BatchNorm's mean and variance start at 0 and 1: training moved them
    assert loaded.model.stateful and averages and not all(np.all((a == 0) | (a == 1)) for a in averages)
    accuracy = float(re.fullmatch(r"cnn test accuracy ([\d.]+)\n", out.stdout).group(1))
    assert accuracy > 0.7, out.stdout


def test_learn_with_fnn_example_runs(tmp_path):
    """The spiral example trains to >= 95%, within a point of a figure the README quotes, and draws its decision boundary.

    Within a point, not to the digit: BLAS kernels differ from CPU to CPU, and 300 steps carry their rounding apart.
    """
    text = README.read_text()
    section = text[text.index("## Learn with fnn") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}  # tiny matrices: threads only slow them
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    accuracy = float(re.fullmatch(r"training accuracy ([\d.]+)%\n", out.stdout).group(1))
    quoted = [float(v) for v in re.findall(r"`training accuracy ([\d.]+)%`", section)]
    assert accuracy >= 95 and quoted and min(abs(accuracy - q) for q in quoted) <= 1.0, (out.stdout, quoted)
    assert (tmp_path / "spiral_boundary.png").stat().st_size > 10_000


def test_readme_starts_with_the_two_commands():
    lines = [ln for ln in README.read_text().splitlines() if ln.strip()][:5]
    text = "\n".join(lines)
    assert "fnn-cli fit --arch 784,128,64,10" in text
    assert "bash .ci/run" in text
    ci = (README.parent / ".ci" / "run").read_text()
    assert "python3 -m pytest -q" in ci and "python3 -m pytest -q" in text
