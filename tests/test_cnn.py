"""Issue 18: convolutional networks in the pipeline.

Arch parsing (every form and error), presets, ``fnn-cli fit --arch conv...`` end to end (evaluate, predict,
runs show, sweep, serve and the pad accept its run), a SIGKILL of a BatchNorm CNN's training then ``--resume``
(bit-identical weights and running averages), augmentation through fit, and weight decay sparing BatchNorm.
Tiny nets on the 2500-example ``small_npz`` subset: a few seconds each.
"""

import json
import subprocess
import sys
import time

import numpy as np
import pytest
from cli_helpers import wait_until
from pad_helpers import data_url, post_json, render_drawing, serve_process

import fnn
from fnn import layers, optim, random, serialization
from fnn.training import arch, runs
from fnn.training.config import ConfigError, FitConfig
from fnn.training.experiment import build_model, build_optimizer, fit_config, load_checkpoint
from fnn.tree import tree_equal, tree_flatten

FNN_CLI = [sys.executable, "-c", "from fnn_cli.main import cli; cli()"]
TINY = "conv4x3,bn,pool2,conv8x3,pool2,dense16,10"  # 28x28 -> 14x14x4 -> 7x7x8 -> 16 -> 10


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize("value, expected", [
    ("784,128,64,10", (784, 128, 64, 10)),
    ([784, 10], (784, 10)),
    (" 784 , 32 ,10", (784, 32, 10)),
    ("conv32x3,pool2,conv64x3,pool2,dense128,10", ("conv32x3", "pool2", "conv64x3", "pool2", "dense128", 10)),
    (["conv32x3", "pool2", "dense128", 10], ("conv32x3", "pool2", "dense128", 10)),  # a YAML list
    (["conv32x3", "10"], ("conv32x3", 10)),
    ("Conv32x3Same, MaxPool2, AvgPool3S1, BatchNorm, GlobalAvgPool, Dropout.25, Dense16, 7",
     ("conv32x3", "pool2", "avgpool3s1", "bn", "gap", "dropout0.25", "dense16", 7)),
    ("conv8x5s2p1,pool3s2,conv4x3valid,flatten,3", ("conv8x5s2p1", "pool3s2", "conv4x3valid", "flatten", 3)),
    ("conv8x3s1,pool2s2,10", ("conv8x3", "pool2", 10)),  # the defaults spelled out are dropped
    ("lenet5", ("lenet5",)),
    ("LeNet5,10", ("lenet5",)),
    ("lenet5,26", ("lenet5", 26)),
    (["vgg-small"], ("vgg-small",)),
])
def test_arch_forms_parse_to_their_canonical_tuple(value, expected):
    assert arch.parse(value) == expected
    assert FitConfig(arch=value).arch == expected
    assert arch.parse(list(expected)) == expected  # config.yaml stores the list: it reads back the same


def test_run_names_keep_the_mlp_form_and_name_layer_lists():
    assert FitConfig(arch="784,128,64,10").arch_name == "784-128-64-10"
    assert FitConfig(arch="conv32x3,MaxPool2,dense128,10").arch_name == "conv32x3-pool2-dense128-10"
    assert FitConfig(arch="lenet5").arch_name == "lenet5" and FitConfig(arch="lenet5,26").arch_name == "lenet5-26"
    assert FitConfig(arch="cnn-bn").to_dict()["arch"] == ["cnn-bn"]


@pytest.mark.parametrize("value, needle", [
    ("784,,10", "empty entry"),
    ("abc", "unknown layer 'abc'"),
    ("conv32x3,pol2,10", "did you mean 'pool2'?"),
    ("784", "needs at least an input and an output size"),
    ("0,10", "every layer size must be >= 1"),
    ("conv32x3,pool2", "must end with the number of classes"),
    ("conv32x3,128,10", "write dense128 for a hidden layer"),
    ("784,conv32x3,10", "784 is a bare number inside a layer list"),
    ("conv0x3,10", "conv0x3 needs filters >= 1"),
    ("conv8x0,10", "conv8x0 needs kernel >= 1"),
    ("conv8x3s0,10", "needs stride >= 1"),
    ("pool0,10", "pool0 needs pool >= 1"),
    ("dense0,10", "dense0 needs units >= 1"),
    ("dropout1.5,10", "needs a dropout rate in [0, 1), got 1.5"),
    ("conv8x3,0", "the number of classes must be >= 1, got 0"),
    ("lenet5,pool2", "the preset lenet5 names a whole network"),
    ("conv8x3,lenet5,10", "the preset lenet5 names a whole network"),
    ("lenet5,10,3", "the preset lenet5 names a whole network"),
    ([True, 10], "neither a number nor a layer"),
    ([], "must be layer sizes"),
    (5, "must be layer sizes"),
    ("784,100000,100000,10", "parameters; the limit"),
])
def test_bad_archs_are_one_line_errors_naming_the_value(value, needle):
    with pytest.raises(ConfigError) as e:
        FitConfig(arch=value)
    assert needle in str(e.value) and "\n" not in str(e.value), str(e.value)


@pytest.mark.parametrize("value, shape, needle", [
    ("conv8x3,dense16,pool2,10", (28, 28), "pool2 after dense16: conv and pooling layers need images, which dense16 has flattened"),
    ("conv8x3,gap,conv4x3,10", (28, 28), "conv4x3 after gap"),
    ("conv8x3,pool2,pool2,pool2,pool2,pool2,10", (28, 28), "does not fit mnist's examples of shape (28, 28)"),
    ("conv8x29valid,10", (28, 28), "does not fit"),
    ("conv8x3,10", (784,), "conv and pooling layers need images, but mnist has flat examples of shape (784,)"),
    ("conv4096x3,dense65536,10", (28, 28), "parameters on mnist; the limit is"),
])
def test_archs_that_do_not_fit_the_examples_are_refused_before_allocating(value, shape, needle):
    with pytest.raises(arch.ArchError) as e:
        arch.build(arch.parse(value), shape, dataset="mnist")
    assert needle in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_the_built_net_follows_the_grammar():
    model, in_shape = arch.build(arch.parse("conv8x3,bn,pool2,conv4x5valid,avgpool2,dense16,dropout0.5,10"), (28, 28),
                                 activation="tanh", dropout=0.2)
    specs = model.spec["layers"]
    assert [s["type"] for s in specs] == ["Reshape", "Conv2D", "BatchNorm", "Tanh", "MaxPool2D", "Conv2D", "Tanh", "AvgPool2D",
                                          "Flatten", "Dense", "Tanh", "Dropout", "Dropout", "Dense"]
    assert in_shape == (-1, 784) and specs[0]["shape"] == "28,28,1"
    assert specs[1]["padding"] == "same" and specs[5]["padding"] == "valid" and specs[5]["kernel"] == 5
    assert specs[1]["w_init"] == "glorot_uniform" and specs[-1]["w_init"] == "glorot_uniform"  # tanh: Glorot by default
    assert [s["rate"] for s in specs if s["type"] == "Dropout"] == [0.2, 0.5]  # --dropout after the hidden dense, then the entry
    assert model.init(None, in_shape)[0] == (-1, 10)
    # colour images keep their channels; --grayscale makes them one
    rgb, in_rgb = build_model(FitConfig(arch="conv4x3,pool2,10", dataset="cifar10"))
    gray, in_gray = build_model(FitConfig(arch="conv4x3,pool2,10", dataset="cifar10", grayscale=True))
    assert (in_rgb, rgb.spec["layers"][0]["shape"]) == ((-1, 3072), "32,32,3")
    assert (in_gray, gray.spec["layers"][0]["shape"]) == ((-1, 1024), "32,32,1")


@pytest.mark.parametrize("name, params", [("lenet5", 61_706), ("cnn-small", 421_642), ("cnn-bn", 421_834), ("vgg-small", None)])
def test_presets_build_and_summarize(name, params):
    model, in_shape = build_model(FitConfig(arch=name))
    text = str(fnn.summary(model, in_shape))
    total = sum(int(np.prod(p.shape)) for _, p in tree_flatten(model.init(None, in_shape)[1]))
    assert f"total: {total:,} parameters" in text and "Conv2D" in text
    if params is not None:
        assert total == params  # LeNet-5's 61,706 (C1 156, C3 2,416, F5 48,120, F6 10,164, output 850)
    cifar, in_cifar = build_model(FitConfig(arch=f"{name},5", dataset="cifar10"))
    assert cifar.init(None, in_cifar)[0] == (-1, 5)


# ---------------------------------------------------------------- the pipeline


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory, small_npz):
    from click.testing import CliRunner

    from fnn_cli.main import cli

    out = tmp_path_factory.mktemp("cnn") / "run"
    r = CliRunner().invoke(cli, ["fit", "--dataset", str(small_npz), "--arch", TINY, "--epochs", "2", "--batch-size", "32",
                                 "--augment", "digits", "--threads", "1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert f"fnn-cli serve --models {out}" in r.output  # it takes 784 inputs: the pad can serve it
    return out


def test_fit_writes_a_cnn_run_with_state_and_augment(cnn_run, small_npz):
    from fnn.training.config import load_config

    summary = json.loads((cnn_run / runs.SUMMARY).read_text())
    assert summary["arch"] == ["conv4x3", "bn", "pool2", "conv8x3", "pool2", "dense16", 10]
    assert summary["input_shape"] == [-1, 784] and summary["test_accuracy"] > 0.5
    loaded = serialization.load_model(cnn_run / runs.MODEL)
    assert loaded.model.stateful and loaded.metadata["arch"] == summary["arch"]
    assert loaded.state["2"]["var"].shape == (4,) and not np.array_equal(loaded.state["2"]["mean"], np.zeros(4))  # trained averages
    assert load_config(cnn_run / runs.CONFIG).augment == {"shift": 2.0, "rotate": 10.0, "scale": 0.1, "elastic": 0.0, "sigma": 4.0,
                                                          "flip": False}
    # the recorded test accuracy is the saved model's, running averages and all
    data = np.load(small_npz)
    x, y = data["x_test"].reshape(len(data["x_test"]), -1) / np.float32(255), data["y_test"]
    accuracy = float(np.mean(fnn.predict(loaded.model, loaded.params, x, state=loaded.state) == y))
    assert accuracy == summary["test_accuracy"] == loaded.metadata["test_accuracy"]


def test_evaluate_draws_conv_filters_and_feature_maps(cli_runner, cli_app, cnn_run, tmp_path):
    r = cli_runner.invoke(cli_app, ["evaluate", str(cnn_run), "--out", str(tmp_path / "eval")])
    assert r.exit_code == 0, r.output
    assert "reproduced" in r.output  # the report's accuracy is summary.json's, to the last bit
    report = (tmp_path / "eval" / "report.md").read_text()
    for picture in ("conv_filters.png", "feature_maps.png", "confusion_matrix.png", "misclassified.png"):
        assert (tmp_path / "eval" / picture).stat().st_size > 1000 and f"({picture})" in report
    assert not (tmp_path / "eval" / "first_layer_weights.png").exists()  # that picture is for a first Dense layer
    from fnn.evaluation.report import block_outputs, first_conv

    loaded = serialization.load_model(cnn_run / runs.MODEL)
    assert first_conv(loaded.model) == (1, 3)  # Conv2D, BatchNorm, Relu
    maps = block_outputs(loaded.model, loaded.params, np.ones((2, 784), np.float32), 3, loaded.state)
    assert maps.shape == (2, 28, 28, 4) and maps.min() >= 0  # after the ReLU


def test_predict_reads_images_and_npy_with_the_cnn(cli_runner, cli_app, cnn_run, tmp_path, mnist_raw):
    from pad_helpers import png

    digits = mnist_raw[2][:3]
    np.save(tmp_path / "three.npy", digits)
    (tmp_path / "seven.png").write_bytes(png(255 - np.kron(digits[0], np.ones((10, 10), np.uint8))))  # dark on light, 280x280
    r = cli_runner.invoke(cli_app, ["predict", str(cnn_run), str(tmp_path / "three.npy"), str(tmp_path / "seven.png"), "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert [row["index"] for row in rows] == [0, 1, 2, 0] and all(len(row["top"]) == 3 for row in rows)
    loaded = serialization.load_model(cnn_run / runs.MODEL)
    expected = fnn.predict(loaded.model, loaded.params, digits.reshape(3, -1) / np.float32(255), state=loaded.state)
    assert [row["top"][0]["label"] for row in rows[:3]] == expected.tolist()


def test_runs_show_and_list_know_the_cnn(cli_runner, cli_app, cnn_run):
    r = cli_runner.invoke(cli_app, ["runs", "show", str(cnn_run)])
    assert r.exit_code == 0, r.output
    assert "Conv2D" in r.output and "BatchNorm" in r.output and "numbers of state" in r.output
    r = cli_runner.invoke(cli_app, ["runs", "list", str(cnn_run.parent), "--where", "arch=conv4x3,bn,pool2,conv8x3,pool2,dense16,10",
                                    "--columns", "arch,test_accuracy"])
    assert r.exit_code == 0, r.output
    assert "conv4x3-bn-pool2-conv8x3-pool2-dense16-10" in r.output and "run" in r.output.splitlines()[0]


def test_the_pad_serves_a_cnn_and_reads_a_drawing(cnn_run, mnist_raw):
    from fnn_web import create_app

    x_test, y_test = mnist_raw[2], mnist_raw[3]
    client = create_app({"MODELS": [cnn_run], "TESTING": True}).test_client()
    rng = np.random.default_rng(18)
    answers = []
    for digit in x_test[:20]:
        png_bytes, _ = render_drawing(digit, rng)
        r = client.post("/api/predict", json={"image": data_url(png_bytes), "compare": True})
        assert r.status_code == 200, r.json
        assert len(r.json["probabilities"]) == 10 and abs(sum(r.json["probabilities"]) - 1) < 1e-4
        answers.append(r.json["label"])
    assert np.mean(np.array(answers) == y_test[:20]) >= 0.5  # a 2-epoch net on 2250 digits reads most drawings
    models = client.get("/api/models").json["models"]
    assert models[0]["test_accuracy"] == json.loads((cnn_run / runs.SUMMARY).read_text())["test_accuracy"]


def test_fnn_cli_serve_loads_the_cnn_run_and_answers_a_drawing(cnn_run, mnist_raw):
    png_bytes, _ = render_drawing(mnist_raw[2][0], np.random.default_rng(0))
    with serve_process([cnn_run]) as (url, _):
        status, body = post_json(url + "/api/predict", {"image": data_url(png_bytes)})
    assert status == 200, body
    assert body["model"] == "run" and body["label"] in range(10) and not body["blank"]


def test_a_sweep_over_cnn_archs(cli_runner, cli_app, small_npz, tmp_path):
    spec = tmp_path / "sweep.yaml"
    spec.write_text(f"base: {{dataset: {small_npz}, epochs: 1, lr: 0.01}}\n"
                    "grid:\n  arch: ['conv4x3,pool2,10', [conv4x3, bn, gap, 10], '784,16,10']\n")
    r = cli_runner.invoke(cli_app, ["sweep", str(spec), "--jobs", "1", "--out", str(tmp_path / "sw")])
    assert r.exit_code == 0, r.output
    rows = {row["name"]: row for row in json.loads((tmp_path / "sw" / "results.json").read_text())}
    assert set(rows) == {"conv4x3-pool2-10", "conv4x3-bn-gap-10", "784-16-10"}, rows
    assert all(row["status"] == "done" for row in rows.values()), rows
    assert serialization.load_model(tmp_path / "sw" / "conv4x3-bn-gap-10" / runs.MODEL).model.stateful


@pytest.mark.parametrize("args, needle", [
    (["--arch", "conv8x3,pol2,10"], "unknown layer 'pol2'; did you mean 'pool2'?"),
    (["--arch", "conv8x3,5"], "ends with 5 outputs, but small has 10 classes"),
    (["--arch", "conv8x3,dense8,pool2,10"], "pool2 after dense8"),
    (["--arch", "lenet5", "--dataset", "{csv}"], "conv and pooling layers need images, but flat has flat examples of shape (4,)"),
    (["--arch", "4,2", "--dataset", "{csv}", "--augment", "digits"], "augment needs images"),
    (["--augment", "digitz"], "unknown augment 'digitz'"),
    (["--augment", "rotate=500"], "rotate must be in [0, 180]"),
    (["--arch", TINY, "--diagnostics"], "diagnostics do not support batch norm"),
])
def test_bad_cnn_options_exit_2_with_one_line(cli_runner, cli_app, small_npz, tmp_path, args, needle):
    csv = tmp_path / "flat.csv"
    csv.write_text("label,a,b,c,d\n" + "".join(f"{i % 2},{i},1,2,3\n" for i in range(20)))
    args = [a.replace("{csv}", str(csv)) for a in args]
    r = cli_runner.invoke(cli_app, ["fit", "--dataset", str(small_npz), "--epochs", "1", "--out", str(tmp_path / "r"), *args])
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.output, r.output
    assert not (tmp_path / "r" / runs.MODEL).exists()


# ---------------------------------------------------------------- kill and resume




def test_sigkill_during_training_of_a_batchnorm_cnn_then_resume_is_bit_identical(cli_runner, cli_app, small_npz, tmp_path):
    args = ["--dataset", str(small_npz), "--arch", "conv4x3,bn,pool2,dense16,dropout0.2,10", "--epochs", "3", "--batch-size", "32",
            "--val-split", "0.5", "--augment", "digits", "--threads", "1", "-q"]
    ref = tmp_path / "ref"
    r = cli_runner.invoke(cli_app, ["fit", *args, "--out", str(ref)])
    assert r.exit_code == 0, r.output
    run, kills = tmp_path / "killed", []
    ckpt = run / runs.CHECKPOINT
    for target in (1, 2):  # kill inside epoch 2, then (after resuming) inside epoch 3 of 3
        cmd = FNN_CLI + (["fit", "--resume", str(run), "-q"] if ckpt.is_file() else ["fit", *args, "--out", str(run)])
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        reached = wait_until(lambda target=target: ckpt.is_file() and load_checkpoint_epoch(ckpt) >= target, proc,
                            timeout=120.0, poll=0.002)
        time.sleep(0.05)  # into the next epoch
        assert reached and proc.poll() is None, f"the run ended before the kill: {proc.stderr.read().decode()[-2000:]}"
        proc.kill()
        proc.wait()
        proc.stderr.close()
        kills.append(load_checkpoint(ckpt)["epoch"])
        assert not (run / runs.MODEL).exists()
    assert kills == [1, 2], kills
    r = subprocess.run(FNN_CLI + ["fit", "--resume", str(run), "-q"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    want, got = serialization.load_model(ref / runs.MODEL), serialization.load_model(run / runs.MODEL)
    assert tree_equal(got.params, want.params) and tree_equal(got.state, want.state)  # BatchNorm's running averages too
    assert json.loads((run / runs.SUMMARY).read_text())["test_accuracy"] == json.loads((ref / runs.SUMMARY).read_text())["test_accuracy"]


def load_checkpoint_epoch(path):
    try:
        return load_checkpoint(path)["epoch"]
    except Exception:  # noqa: BLE001 - mid-write or not there yet: ask again
        return -1


# ---------------------------------------------------------------- augmentation through fit


def test_augmentation_on_off_and_determinism_through_fit(small_npz, tmp_path):
    base = FitConfig(dataset=str(small_npz), arch="conv4x3,pool2,10", epochs=1, lr=0.01)
    plain = fit_config(base, tmp_path / "plain", threads=1)
    aug = fit_config(base.replace(augment="digits"), tmp_path / "aug", threads=1)
    again = fit_config(base.replace(augment="digits"), tmp_path / "again", threads=1)
    other = fit_config(base.replace(augment="digits", seed=1), tmp_path / "other", threads=1)
    params = {name: serialization.load_model(tmp_path / name / runs.MODEL).params for name in ("plain", "aug", "again", "other")}
    assert tree_equal(params["aug"], params["again"])
    assert not tree_equal(params["aug"], params["plain"]) and not tree_equal(params["aug"], params["other"])
    assert aug["test_accuracy"] == again["test_accuracy"] and plain["test_accuracy"] is not None and other
    off = fit_config(base.replace(augment="none"), tmp_path / "off", threads=1)  # "none" is no augmentation at all
    assert tree_equal(serialization.load_model(tmp_path / "off" / runs.MODEL).params, params["plain"]) and off
    with pytest.raises(ConfigError, match="cannot resume with a different configuration: augment"):
        fit_config(base.replace(augment="photos", epochs=2), tmp_path / "aug", resume=True)


def test_the_augment_key_in_a_config_file(cli_runner, cli_app, small_npz, tmp_path):
    (tmp_path / "c.yaml").write_text(f"dataset: {small_npz}\narch: [conv4x3, pool2, 10]\nepochs: 1\n"
                                     "augment: {shift: 1, rotate: 5}\n")
    r = cli_runner.invoke(cli_app, ["fit", "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "r"), "-q"])
    assert r.exit_code == 0, r.output
    from fnn.training.config import load_config

    assert load_config(tmp_path / "r" / runs.CONFIG).augment == {"shift": 1.0, "rotate": 5.0, "scale": 0.0, "elastic": 0.0,
                                                                 "sigma": 4.0, "flip": False}
    (tmp_path / "bad.yaml").write_text("augment: {shift: 1, spin: 5}\n")
    r = cli_runner.invoke(cli_app, ["fit", "--config", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "b")])
    assert r.exit_code == 2 and "unknown augment option 'spin'" in r.output and len(r.output.strip().splitlines()) == 1


# ---------------------------------------------------------------- weight decay


def test_weight_decay_spares_batchnorm_scale_shift_and_biases():
    config = FitConfig(arch="conv4x3,bn,pool2,dense8,bn,10", optimizer="adamw", weight_decay=0.5, lr=0.1)
    model, in_shape = build_model(config)
    _, params = model.init(random.key(0), in_shape)
    opt = build_optimizer(config, steps_per_epoch=10)
    zeros = fnn.tree.tree_map(np.zeros_like, params)
    updates, _ = opt.update(zeros, opt.init(params), params)  # no gradient: only the decay moves anything
    moved = {path: bool(np.any(u)) for path, u in tree_flatten(updates)}
    decayed = sorted(p for p, m in moved.items() if m)
    assert decayed == ["1.w", "6.w", "9.w"], decayed  # the conv and dense kernels; never BatchNorm scale/shift or biases
    assert {p for p in moved if p.endswith(("scale", "shift"))} == {"2.scale", "2.shift", "7.scale", "7.shift"}
    assert layers.BatchNorm().init(random.key(0), (-1, 3))[1]["scale"].ndim == 1  # why the default mask (>= 2-D) spares them
    assert optim.by_name("adamw", 0.1, 0.5) is not None
