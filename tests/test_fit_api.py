"""fnn.fit on arrays: any model, callbacks that steer, every task, weights, checkpoints with exact resume, custom layers."""

import json
import signal

import numpy as np
import pytest

import fnn
from fnn import gradcheck, layers, losses, optim, random, tasks
from fnn.training import callbacks as cbs
from fnn.training.fit import Interrupted, TrainingDiverged
from fnn.tree import tree_equal
from fnn.workspace import FRESH


def blobs(n=300, classes=3, seed=0):
    """Three separable Gaussian blobs in 2-D (float32) and their labels."""
    centres = np.array([[2, 0], [-1, 1.7], [-1, -1.7]], np.float32)[:classes]
    y = np.arange(n) % classes
    x = centres[y] + 0.5 * random.normal(random.key(seed), (n, 2))
    return x.astype(np.float32), y


def moons(n=400, seed=0):
    """Two interleaving half circles, labels 0/1 (the binary task)."""
    t = random.uniform(random.key(seed), (n,), 0, np.pi, np.float64)
    y = np.arange(n) % 2
    x = np.stack([np.cos(t) + y * (1 - 2 * np.cos(t)) - 0.5 * y, np.sin(t) * (1 - 2 * y) + 0.25 * y], 1)
    x = x + 0.08 * random.normal(random.key(seed + 1), (n, 2), np.float64)
    return x.astype(np.float32), y


# ---------------------------------------------------------------- a custom layer, first class


@layers.register("Scale")
def Scale(init_value: float = 1.0):
    """``y = x * s`` with one learned scale per feature; ``ds = sum over the batch of dy * x``, ``dx = dy * s``."""

    def init(key, in_shape):
        return tuple(in_shape), {"s": np.full(in_shape[-1], init_value, np.float32)}

    def apply(params, x, key=None):
        return x * params["s"]

    def vjp(params, x, key=None, ws=FRESH, need_dx=True):
        return x * params["s"], lambda dy: ({"s": (dy * x).sum(0)}, dy * params["s"])

    return layers.layer(init, apply, vjp, {"type": "Scale", "init_value": init_value})


def test_a_custom_layer_is_gradchecked_trained_by_fit_saved_and_loaded(tmp_path):
    assert gradcheck.check_layer(Scale(0.5), (1, 3)) < 1e-7 and gradcheck.check_layer(Scale(), (4, 3)) < 1e-7
    x, y = blobs()
    model = fnn.serial(Scale(0.5), fnn.Dense(16), fnn.Relu, fnn.Dense(3))
    result = fnn.fit(model, x, y, optimizer=optim.adam(0.02), epochs=15, batch_size=32, verbose=0)
    assert result.history["accuracy"][-1] > 0.95
    assert not np.allclose(result.params["0"]["s"], 0.5), "the scale was trained"
    fnn.save_model(tmp_path / "m.npz", model, result.params, result.in_shape, {"task": tasks.name_of(result.task)})
    loaded = fnn.load_model(tmp_path / "m.npz")
    assert loaded.model.spec == model.spec and tree_equal(loaded.params, result.params)
    np.testing.assert_array_equal(fnn.predict(loaded.model, loaded.params, x), fnn.predict(model, result.params, x))


def test_an_unregistered_layer_is_refused_at_save_time_saying_how_to_register_it(tmp_path):
    plain = Scale()._replace(spec={"type": "NotRegistered"})
    model = fnn.serial(plain, fnn.Dense(2))
    _, params = model.init(random.key(0), (-1, 3))
    with pytest.raises(ValueError, match=r"unknown layer type 'NotRegistered'.*fnn\.layers\.register"):
        fnn.save_model(tmp_path / "m.npz", model, params, (-1, 3))
    assert not (tmp_path / "m.npz").exists()


# ---------------------------------------------------------------- callbacks that steer


class StopAfterFirst(cbs.Callback):
    def on_epoch_end(self, epoch, logs=None):
        return True


class FlagAfterFirst(cbs.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.loop.stop_training = True


class RaiseAfterFirst(cbs.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise cbs.StopTraining


@pytest.mark.parametrize("stopper", [StopAfterFirst, FlagAfterFirst, RaiseAfterFirst])
def test_a_callback_that_stops_after_epoch_1_leaves_a_complete_result(stopper):
    x, y = blobs()
    result = fnn.fit(fnn.mlp([2, 8, 3]), x, y, epochs=4, batch_size=64, callbacks=[stopper()], verbose=0)
    assert result.stopped_early and len(result.history["loss"]) == 1 and len(result.records) == 1


def test_a_callback_that_stops_the_cli_run_after_epoch_1_still_writes_model_and_summary(small_npz, tmp_path):
    from fnn.training import runs
    from fnn.training.config import FitConfig
    from fnn.training.experiment import fit_config

    summary = fit_config(FitConfig(dataset=str(small_npz), arch=(784, 8, 10), epochs=4), tmp_path / "r", callbacks=[StopAfterFirst()])
    assert summary["epochs"] == 1 and summary["stopped_early"] and (tmp_path / "r" / runs.MODEL).is_file()
    assert json.loads((tmp_path / "r" / runs.SUMMARY).read_text())["epochs"] == 1
    assert len(runs.read_metrics(tmp_path / "r")) == 1


def test_reduce_lr_on_plateau_lowers_the_rate_when_val_loss_stalls():
    x, y = blobs()
    flat = cbs.ReduceLROnPlateau("val_loss", factor=0.5, patience=1, min_delta=10.0)  # nothing counts as better: it stalls
    result = fnn.fit(fnn.mlp([2, 8, 3]), x, y, optimizer=optim.sgd(0.1), epochs=4, batch_size=64,
                     validation_split=0.2, callbacks=[flat], verbose=0)
    lrs = result.history["lr"]  # the rate the epoch's steps used (kept as float32)
    assert lrs == pytest.approx([0.1, 0.1, 0.05, 0.025], rel=1e-6)  # epoch 1 sets the best; every later epoch stalls
    assert [e for e, _ in flat.reductions] == [2, 3, 4]
    assert [lr for _, lr in flat.reductions] == pytest.approx([0.05, 0.025, 0.0125], rel=1e-6)
    steady = cbs.ReduceLROnPlateau("val_loss", factor=0.5, patience=3)
    again = fnn.fit(fnn.mlp([2, 8, 3]), x, y, optimizer=optim.sgd(0.1), epochs=3, batch_size=64, validation_split=0.2,
                    callbacks=[steady], verbose=0)
    assert again.history["lr"] == pytest.approx([0.1] * 3, rel=1e-6) and steady.reductions == []


def test_learning_rate_scheduler_sets_each_epochs_rate():
    x, y = blobs()
    sched = cbs.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))
    result = fnn.fit(fnn.mlp([2, 8, 3]), x, y, optimizer=optim.sgd(0.1), epochs=3, batch_size=64, callbacks=[sched], verbose=0)
    assert result.history["lr"] == pytest.approx([0.1, 0.05, 0.1 / 3], rel=1e-6)


def test_early_stopping_restores_the_best_epochs_weights():
    x, y = blobs()
    stop = cbs.EarlyStopping("val_loss", patience=1, min_delta=10.0)  # epoch 2 is no better: stop, keep epoch 1
    kept = []

    class Keep(cbs.Callback):
        def on_epoch_end(self, epoch, logs=None):
            kept.append(fnn.tree.tree_copy(self.loop.params))

    result = fnn.fit(fnn.mlp([2, 8, 3]), x, y, epochs=5, batch_size=64, validation_split=0.2, callbacks=[stop, Keep()], verbose=0)
    assert result.stopped_early and len(result.records) == 2 and stop.best_epoch == 1
    assert tree_equal(result.params, kept[0]) and not tree_equal(result.params, kept[1])


def test_loggers_write_one_row_per_epoch(tmp_path):
    x, y = blobs()
    csv_log, json_log = cbs.CSVLogger(tmp_path / "log.csv"), cbs.JSONLogger(tmp_path / "log.jsonl")
    fnn.fit(fnn.mlp([2, 8, 3]), x, y, epochs=3, batch_size=64, validation_split=0.2, callbacks=[csv_log, json_log], verbose=0)
    lines = (tmp_path / "log.csv").read_text().splitlines()
    assert lines[0].split(",")[:3] == ["epoch", "loss", "accuracy"] and len(lines) == 4
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3] and "val_accuracy" in rows[0]


def test_model_checkpoint_saves_the_best_model(tmp_path):
    x, y = blobs()
    ck = cbs.ModelCheckpoint(tmp_path / "best-{epoch}.npz", "val_accuracy", save_best_only=True)
    fnn.fit(fnn.mlp([2, 8, 3]), x, y, epochs=3, batch_size=64, validation_split=0.2, callbacks=[ck], verbose=0)
    assert ck.saved and all((tmp_path / p.split("/")[-1]).is_file() for p in ck.saved)
    assert fnn.load_model(ck.saved[-1]).metadata["epoch"] == int(ck.saved[-1].split("-")[-1].split(".")[0])


# ---------------------------------------------------------------- tasks


def test_binary_one_sigmoid_output_from_logits():
    x, y = moons()
    model = fnn.mlp([2, 32, 32, 1])
    _, params = model.init(random.key(0), (-1, 2))
    step = fnn.make_train_step(model, losses.binary_cross_entropy, optim.adam(0.01))
    _, _, m = step(params, optim.adam(0.01).init(params), (x, y))
    true_acc = float(np.mean(fnn.predict(model, params, x) == y))
    assert m["accuracy"] == pytest.approx(true_acc) and m["accuracy"] <= 0.6  # an untrained model, not 1.0
    result = fnn.fit(model, x, y, loss=losses.binary_cross_entropy, optimizer=optim.adam(0.02), epochs=60, batch_size=64,
                     validation_split=0.25, verbose=0)
    assert result.task == tasks.Task("binary", "logits") and result.history["val_accuracy"][-1] >= 0.95
    pred, proba = fnn.predict(model, result.params, x), fnn.predict_proba(model, result.params, x)
    assert set(np.unique(pred)) == {0, 1} and pred.shape == (len(x),) and proba.shape == (len(x),)
    np.testing.assert_array_equal(pred, (proba > 0.5).astype(int))


def test_regression_reports_mse_mae_and_r2_never_accuracy():
    x = np.linspace(0, 1, 256, dtype=np.float32)[:, None]
    y = np.sin(2 * np.pi * x) + 0.05 * random.normal(random.key(3), x.shape)
    model = fnn.mlp([1, 32, 32, 1], activation="tanh")
    result = fnn.fit(model, x, y, loss=losses.mse, optimizer=optim.adam(0.01), epochs=300, batch_size=64,
                     validation_data=(x, y), verbose=0)
    assert "accuracy" not in result.history and {"mse", "mae", "val_mse", "val_mae", "val_r2"} <= set(result.history)
    assert result.history["val_r2"][-1] >= 0.95
    out = fnn.evaluate(model, result.params, x, y, losses.mse)
    assert out["r2"] == pytest.approx(result.history["val_r2"][-1]) and "accuracy" not in out
    values = fnn.predict(model, result.params, x, task="regression/values")
    assert values.shape == (256, 1)
    mae = fnn.fit(model, x, y, loss=losses.mae, epochs=2, verbose=0)
    assert "mae" in mae.history and "accuracy" not in mae.history


def test_a_model_ending_in_softmax_is_not_softmaxed_twice_and_is_refused_with_a_logits_loss():
    x, y = blobs()
    logits_model = fnn.mlp([2, 8, 3])
    result = fnn.fit(logits_model, x, y, epochs=5, batch_size=32, verbose=0)
    probs_model = fnn.serial(*logits_model.children, fnn.Softmax)
    params = {**result.params, "3": {}}
    p = fnn.predict_proba(probs_model, params, x)
    np.testing.assert_allclose(p, fnn.predict_proba(logits_model, result.params, x), rtol=1e-6)
    ev = fnn.evaluate(probs_model, params, x, y, losses.categorical_cross_entropy)
    assert ev["loss"] == pytest.approx(fnn.evaluate(logits_model, result.params, x, y)["loss"], rel=1e-4)
    with pytest.raises(ValueError, match="ends in Softmax.*categorical_cross_entropy"):
        fnn.fit(probs_model, x, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="ends in Sigmoid"):
        fnn.make_train_step(fnn.serial(fnn.Dense(1), fnn.Sigmoid), losses.binary_cross_entropy, optim.sgd(0.1))


def test_multilabel_outputs_are_independent_0_1_decisions():
    x, y1 = blobs()
    y = np.stack([y1 == 0, y1 == 1], 1).astype(np.float32)
    result = fnn.fit(fnn.mlp([2, 16, 2]), x, y, loss=losses.binary_cross_entropy, optimizer=optim.adam(0.02), epochs=20,
                     batch_size=32, verbose=0)
    assert result.task.kind == "multilabel" and result.history["accuracy"][-1] > 0.95
    assert fnn.predict(fnn.mlp([2, 16, 2]), result.params, x, task=result.task).shape == (300, 2)


# ---------------------------------------------------------------- weights


def test_class_weight_and_sample_weight_weigh_the_loss_and_match_by_hand():
    x, y = blobs()
    model = fnn.mlp([2, 8, 3])
    _, params = model.init(random.key(0), (-1, 2))
    a = fnn.fit(model, x, y, epochs=2, batch_size=50, shuffle=False, class_weight={0: 1.0, 1: 3.0, 2: 0.5}, params=params, verbose=0)
    w = np.array([1.0, 3.0, 0.5], np.float32)[y]
    b = fnn.fit(model, x, y, epochs=2, batch_size=50, shuffle=False, sample_weight=w, params=params, verbose=0)
    assert tree_equal(a.params, b.params)
    plain = fnn.fit(model, x, y, epochs=2, batch_size=50, shuffle=False, params=params, verbose=0)
    assert not tree_equal(a.params, plain.params)
    ones = fnn.fit(model, x, y, epochs=2, batch_size=50, shuffle=False, sample_weight=np.ones(300), params=params, verbose=0)
    assert all(np.allclose(u, v, rtol=1e-6, atol=1e-7)
               for u, v in zip(fnn.tree.tree_leaves(ones.params), fnn.tree.tree_leaves(plain.params)))
    with pytest.raises(ValueError, match="no weight for classes"):
        fnn.fit(model, x, y, class_weight={0: 1.0}, verbose=0)


# ---------------------------------------------------------------- checkpoints and exact resume


class Interrupt(cbs.Callback):
    def __init__(self, epoch, batch):
        self.at = (epoch, batch)

    def on_batch_end(self, batch, logs=None):
        if (self.loop.epoch, batch) == self.at:
            signal.raise_signal(signal.SIGTERM)


def test_sigterm_mid_epoch_then_resume_gives_the_uninterrupted_bits(tmp_path):
    x, y = blobs()
    model = fnn.mlp([2, 8, 3], dropout=0.1)
    kw = dict(epochs=4, batch_size=32, validation_split=0.2, seed=3, verbose=0)
    whole = fnn.fit(model, x, y, callbacks=[cbs.EarlyStopping(patience=10)], **kw)
    ckpt = tmp_path / "ckpt.npz"
    with pytest.raises(Interrupted) as e:
        fnn.fit(model, x, y, callbacks=[cbs.EarlyStopping(patience=10), Interrupt(1, 3)], checkpoint=ckpt, **kw)
    assert e.value.signum == signal.SIGTERM and e.value.path == ckpt
    again = fnn.fit(model, x, y, callbacks=[cbs.EarlyStopping(patience=10)], checkpoint=ckpt, resume=True, **kw)
    assert tree_equal(again.params, whole.params) and tree_equal(again.opt_state, whole.opt_state)
    assert [r["loss"] for r in again.records] == [r["loss"] for r in whole.records]


def test_a_checkpoint_of_another_seed_is_refused(tmp_path):
    x, y = blobs()
    fnn.fit(fnn.mlp([2, 8, 3]), x, y, epochs=1, checkpoint=tmp_path / "c.npz", seed=1, verbose=0)
    with pytest.raises(fnn.serialization.ModelFileError, match="another seed"):
        fnn.fit(fnn.mlp([2, 8, 3]), x, y, epochs=2, checkpoint=tmp_path / "c.npz", resume=True, seed=2, verbose=0)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_divergence_names_epoch_step_and_layer():
    x, y = blobs()
    with pytest.raises(TrainingDiverged, match=r"at epoch 1, step \d+; .*layer"):
        fnn.fit(fnn.mlp([2, 8, 3]), x * 1e30, y, optimizer=optim.sgd(1e3), epochs=2, verbose=0)


def test_same_seed_same_bits_and_bad_arguments_are_named():
    x, y = blobs()
    a = fnn.fit(fnn.mlp([2, 8, 3], dropout=0.2), x, y, epochs=2, seed=5, validation_split=0.1, verbose=0)
    b = fnn.fit(fnn.mlp([2, 8, 3], dropout=0.2), x, y, epochs=2, seed=5, validation_split=0.1, verbose=0)
    assert tree_equal(a.params, b.params) and a.records[-1]["val_loss"] == b.records[-1]["val_loss"]
    for kwargs, match in [({"epochs": 0}, "epochs must be"), ({"batch_size": 2.5}, "batch_size must be"),
                          ({"validation_split": 1.0}, "validation_split"), ({"verbose": 7}, "verbose")]:
        with pytest.raises(ValueError, match=match):
            fnn.fit(fnn.mlp([2, 8, 3]), x, y, **kwargs)
    with pytest.raises(ValueError, match=r"labels are shaped \(300, 1\)"):
        fnn.fit(fnn.mlp([2, 8, 3]), x, y[:, None], verbose=0)
    with pytest.raises(ValueError, match=r"must lie in 0\.\.2"):
        fnn.fit(fnn.mlp([2, 8, 3]), x, y + 1, verbose=0)


def test_verbose_prints_one_line_per_epoch_and_nothing_when_quiet(capsys):
    x, y = blobs()
    fnn.fit(fnn.mlp([2, 8, 3]), x, y, epochs=2, verbose=2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[1].startswith("epoch   1/2  loss ") and "acc " in lines[1]
    fnn.fit(fnn.mlp([2, 8, 3]), x, y, epochs=2)  # verbose=None: quiet when not a terminal (pytest captures)
    assert capsys.readouterr().out == ""


# ---------------------------------------------------------------- summary


def test_summary_of_784_128_64_10():
    s = fnn.summary(fnn.mlp([784, 128, 64, 10]), (-1, 784))
    assert s.total == 109_386 and [r.params for r in s.rows if r.type == "Dense"] == [100_480, 8_256, 650]
    text = str(s)
    assert "109,386 parameters" in text and "100,480" in text and "(None, 64)" in text
    nested = fnn.summary(fnn.serial(fnn.Flatten, fnn.mlp([6, 4, 2])), (-1, 2, 3))
    assert [r.name for r in nested.rows] == ["0", "1.0", "1.1", "1.2"] and nested.total == 6 * 4 + 4 + 4 * 2 + 2


def test_runs_show_prints_the_model_summary(cli_runner, cli_app, small_npz, tmp_path):
    from fnn.training.config import FitConfig
    from fnn.training.experiment import fit_config

    fit_config(FitConfig(dataset=str(small_npz), arch=(784, 16, 10), epochs=1), tmp_path / "r")
    r = cli_runner.invoke(cli_app, ["runs", "show", str(tmp_path / "r")])
    assert r.exit_code == 0, r.output
    assert "total: 12,730 parameters" in r.output and "(None, 16)" in r.output and "12,560" in r.output


def test_augment_gets_a_key_per_step_and_resumes_exactly(tmp_path):
    x, y = blobs()
    seen = []

    def jitter(xb, key):
        seen.append(tuple(int(w) for w in key))
        return xb + 0.1 * random.normal(key, xb.shape)

    kw = dict(epochs=3, batch_size=50, seed=4, augment=jitter, verbose=0)
    whole = fnn.fit(fnn.mlp([2, 8, 3]), x, y, **kw)
    assert len(seen) == 18 and len(set(seen)) == 18, "one fresh key per batch"
    plain = fnn.fit(fnn.mlp([2, 8, 3]), x, y, epochs=3, batch_size=50, seed=4, verbose=0)
    assert not tree_equal(whole.params, plain.params), "the augmentation was applied"
    ckpt = tmp_path / "c.npz"
    with pytest.raises(Interrupted):
        fnn.fit(fnn.mlp([2, 8, 3]), x, y, checkpoint=ckpt, callbacks=[Interrupt(1, 2)], **kw)
    again = fnn.fit(fnn.mlp([2, 8, 3]), x, y, checkpoint=ckpt, resume=True, **kw)
    assert tree_equal(again.params, whole.params)
