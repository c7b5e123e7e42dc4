"""Issue 17, the Python API: what a learner gets wrong is refused at once, in one line naming the argument and its value.

Each test is one class of misuse, parametrized over its cases: optimizer and
schedule hyperparameters (checked when made), a schedule giving a bad rate, the
state of another optimizer, layer arguments, ``serial`` given no layer or a
factory, an input with the wrong feature count, ``init(None, ...)``
placeholders given to training, bad batches for the bare train steps, targets a
loss cannot take, and model-file paths and arguments. Before these checks the
same calls trained silently to NaN or zeros, wrapped label -1 to the last
class, or failed deep inside NumPy (a gufunc signature, ``KeyError: 'mu'``,
``ZeroDivisionError``).
"""

import io

import numpy as np
import pytest

import fnn
from fnn import layers, losses, optim, random, serialization, train
from fnn.layers import Dense, Relu, serial

NAN, INF = float("nan"), float("inf")


def needle_ids(value):
    """Readable test ids: the needles a case looks for."""
    plain = isinstance(value, tuple) and all(isinstance(v, (str, int, float)) for v in value)
    return "|".join(map(str, value)) if plain else None  # None: pytest numbers the rest (no addresses in the ids)


def refused(call, exc, *needles):
    """``call()`` raises ``exc`` with a one-line message holding every needle; returns the message."""
    with pytest.raises(exc) as info:
        call()
    message = str(info.value)
    assert "\n" not in message, message
    for needle in needles:
        assert str(needle) in message, (needle, message)
    return message


def tiny():
    """A 6-4-3 model, its params, a batch of 5 and its labels."""
    model = fnn.mlp([6, 4, 3])
    _, params = model.init(random.key(0), (-1, 6))
    x = random.normal(random.key(1), (5, 6), np.float32)
    return model, params, x, np.array([0, 1, 2, 0, 1])


# ---------------------------------------------------------------- optimizers and schedules


@pytest.mark.parametrize("make, exc, needles", [
    (lambda: optim.adam(lr=-1), ValueError, ("adam", "lr=-1")),
    (lambda: optim.adam(lr=NAN), ValueError, ("adam", "lr=nan")),
    (lambda: optim.adam(lr=INF), ValueError, ("adam", "lr=inf")),
    (lambda: optim.sgd(0), ValueError, ("sgd", "lr=0")),
    (lambda: optim.sgd("0.1"), TypeError, ("sgd", "lr='0.1'")),
    (lambda: optim.sgd(None), TypeError, ("sgd", "lr=None")),
    (lambda: optim.adam(b1=1.5), ValueError, ("adam", "b1=1.5", "[0, 1)")),
    (lambda: optim.adam(b1=-0.1), ValueError, ("adam", "b1=-0.1")),
    (lambda: optim.adam(b2=1.0), ValueError, ("adam", "b2=1.0")),
    (lambda: optim.adam(eps=-1), ValueError, ("adam", "eps=-1")),
    (lambda: optim.adam(eps=0), ValueError, ("adam", "eps=0")),
    (lambda: optim.adam(clip_norm=0), ValueError, ("adam", "clip_norm=0")),
    (lambda: optim.sgd(0.1, clip_norm=NAN), ValueError, ("sgd", "clip_norm=nan")),
    (lambda: optim.momentum(0.1, beta=-2), ValueError, ("momentum", "beta=-2")),
    (lambda: optim.nesterov(0.1, beta=1.0), ValueError, ("nesterov", "beta=1.0")),
    (lambda: optim.adamw(weight_decay=-1), ValueError, ("adamw", "weight_decay=-1")),
    (lambda: optim.adamw(weight_decay=INF), ValueError, ("adamw", "weight_decay=inf")),
    (lambda: optim.sgd(0.1, weight_decay=True), TypeError, ("sgd", "weight_decay=True")),
    (lambda: optim.rmsprop(0.1, decay=1.5), ValueError, ("rmsprop", "decay=1.5")),
    (lambda: optim.rmsprop(0.1, eps=0), ValueError, ("rmsprop", "eps=0")),
    (lambda: optim.adagrad(0.1, initial_accumulator=-1), ValueError, ("adagrad", "initial_accumulator=-1")),
    (lambda: optim.adagrad(0.1, eps=NAN), ValueError, ("adagrad", "eps=nan")),
    (lambda: optim.sgd(0.1, mask="weights"), TypeError, ("sgd", "mask='weights'")),
    (lambda: optim.scale_by_adam(b1=1), ValueError, ("scale_by_adam", "b1=1")),
    (lambda: optim.trace(decay=2), ValueError, ("trace", "decay=2")),
    (lambda: optim.scale_by_rms(eps=-1e-8), ValueError, ("scale_by_rms", "eps=-1e-08")),
    (lambda: optim.scale_by_adagrad(initial_accumulator=-0.5), ValueError, ("scale_by_adagrad", "initial_accumulator=-0.5")),
    (lambda: optim.clip_by_global_norm(0), ValueError, ("clip_by_global_norm", "max_norm=0")),
    (lambda: optim.add_decayed_weights(-1e-4), ValueError, ("add_decayed_weights", "weight_decay=-0.0001")),
    (lambda: optim.scale(NAN), ValueError, ("scale", "factor=nan")),
    (lambda: optim.scale_by_learning_rate(-0.1), ValueError, ("scale_by_learning_rate", "lr=-0.1")),
], ids=needle_ids)
def test_optimizer_hyperparameters_are_checked_when_made(make, exc, needles):
    refused(make, exc, *needles)


@pytest.mark.parametrize("make, needles", [
    (lambda: optim.step_decay(0.1, 0), ("step_decay", "step_size=0")),
    (lambda: optim.step_decay(0.1, 2.5), ("step_decay", "step_size=2.5")),
    (lambda: optim.step_decay(0.1, 10, gamma=-0.5), ("step_decay", "gamma=-0.5")),
    (lambda: optim.step_decay(-0.1, 10), ("step_decay", "lr=-0.1")),
    (lambda: optim.exponential_decay(0.1, 0.5, 0), ("exponential_decay", "decay_steps=0")),
    (lambda: optim.exponential_decay(0.1, -0.5, 10), ("exponential_decay", "decay_rate=-0.5")),
    (lambda: optim.cosine_decay(0.1, 0), ("cosine_decay", "decay_steps=0")),
    (lambda: optim.cosine_decay(0.1, 100, alpha=2), ("cosine_decay", "alpha=2")),
    (lambda: optim.cosine_decay(NAN, 100), ("cosine_decay", "lr=nan")),
    (lambda: optim.constant(-1), ("constant", "lr=-1")),
    (lambda: optim.warmup(0.1, -5), ("warmup", "warmup_steps=-5")),
    (lambda: optim.warmup(-0.1, 5), ("warmup", "lr=-0.1")),
    (lambda: optim.schedule_by_name("cosine", 0.1, 0), ("schedule_by_name", "total_steps=0")),
    (lambda: optim.schedule_by_name("cosine", -0.1, 100), ("schedule_by_name", "lr=-0.1")),
    (lambda: optim.schedule_by_name("cosine", 0.1, 100, warmup_steps=-1), ("schedule_by_name", "warmup_steps=-1")),
], ids=needle_ids)
def test_schedules_check_their_arguments(make, needles):
    refused(make, ValueError, *needles)


@pytest.mark.parametrize("schedule, at, exc, needles", [
    (lambda step: NAN, 0, ValueError, ("step 0", "nan")),
    (lambda step: -0.01, 0, ValueError, ("step 0", "-0.01")),
    (lambda step: "fast", 0, TypeError, ("schedule", "'fast'", "step 0")),
    (lambda step: None, 0, TypeError, ("schedule", "None", "step 0")),
    (lambda step: 0.1 if step < 2 else NAN, 2, ValueError, ("step 2", "nan")),
    (lambda step: 0.1 - 0.06 * step, 2, ValueError, ("step 2", "-0.0199")),
], ids=needle_ids)
def test_a_schedule_giving_a_bad_rate_stops_before_the_params_change(schedule, at, exc, needles):
    model, params, x, y = tiny()
    opt = optim.adam(schedule)
    if at == 0:  # refused as soon as the state is made: no step has run on it
        refused(lambda: opt.init(params), exc, *needles)
        return
    step = train.make_inplace_train_step(model, losses.softmax_cross_entropy, opt)  # updates its own buffers in place
    state = opt.init(params)
    for _ in range(at):
        params, state, _ = step(params, state, (x, y))
    before = fnn.tree.tree_copy(params)
    refused(lambda: step(params, state, (x, y)), exc, *needles)
    assert fnn.tree.tree_equal(params, before)


OTHERS = {
    "sgd state to adam": (lambda: optim.adam(), lambda: optim.sgd(0.1), ("another optimizer", "['0', '1']", "['0']")),
    "adam state to sgd": (lambda: optim.sgd(0.1), lambda: optim.adam(), ("another optimizer", "['0', '1']", "['0']")),
    "rmsprop state to momentum": (lambda: optim.momentum(0.1), lambda: optim.rmsprop(0.1),
                                  ("'trace' missing", "another optimizer", "['nu']", "['trace']")),
    "adam state to adam with clipping": (lambda: optim.adam(clip_norm=1.0), lambda: optim.adam(), ("another optimizer", "['0', '1', '2']")),
    "adagrad state to rmsprop": (lambda: optim.rmsprop(0.1), lambda: optim.adagrad(0.1), ("'nu' missing", "['sum_sq']")),
    "no state": (lambda: optim.adam(), None, ("opt_state must be the dict", "NoneType")),
    "the params for a state": (lambda: optim.adam(), "params", ("opt_state has parts ['0', '1', '2']", "another optimizer")),
}


@pytest.mark.parametrize("how", ["update", "make_train_step", "make_inplace_train_step"])
@pytest.mark.parametrize("case", list(OTHERS))
def test_update_refuses_another_optimizers_state(case, how):
    make, make_other, needles = OTHERS[case]
    model, params, x, y = tiny()
    opt = make()
    state = None if make_other is None else params if make_other == "params" else make_other().init(params)
    if how == "update":
        call = lambda: opt.update(params, state, params)  # noqa: E731
    else:
        step = getattr(train, how)(model, losses.softmax_cross_entropy, opt)
        call = lambda: step(params, state, (x, y))  # noqa: E731
    refused(call, optim.OptStateError, "optimizer.init(params)", *needles)


def test_update_refuses_a_state_made_for_other_params():
    model, params, x, y = tiny()
    other = fnn.mlp([6, 5, 3]).init(random.key(0), (-1, 6))[1]
    opt = optim.adam()
    step = train.make_train_step(model, losses.softmax_cross_entropy, opt)
    refused(lambda: step(params, opt.init(other), (x, y)), optim.OptStateError, "other params", "(6, 5)", "(6, 4)")


# ---------------------------------------------------------------- layers


@pytest.mark.parametrize("units, exc", [
    (2.7, ValueError), ("10", TypeError), (True, TypeError), (False, TypeError), (0, ValueError), (-3, ValueError),
    (None, TypeError), (10.5, ValueError), (NAN, ValueError), (INF, ValueError), ([10], TypeError),
])
def test_dense_units_must_be_a_positive_whole_number(units, exc):
    refused(lambda: Dense(units), exc, "Dense units", repr(units))


def test_dense_keeps_whole_number_units():
    assert Dense(10.0).spec["units"] == 10 and type(Dense(10.0).spec["units"]) is int
    assert Dense(np.int64(3)).spec["units"] == 3 and type(Dense(np.int64(3)).spec["units"]) is int


@pytest.mark.parametrize("make, exc, needles", [
    (lambda: layers.Dropout("0.5"), TypeError, ("dropout rate", "'0.5'")),
    (lambda: layers.Dropout(None), TypeError, ("dropout rate", "None")),
    (lambda: layers.Dropout(1.0), ValueError, ("dropout rate", "1.0")),
    (lambda: layers.LeakyRelu("x"), TypeError, ("LeakyRelu alpha", "'x'")),
    (lambda: layers.LeakyRelu(NAN), ValueError, ("LeakyRelu alpha", "nan")),
    (lambda: layers.BatchNorm(momentum="a"), TypeError, ("BatchNorm momentum", "'a'")),
    (lambda: layers.BatchNorm(eps=None), TypeError, ("BatchNorm eps", "None")),
    (lambda: layers.Dense(4, w_init=["he_uniform"]), TypeError, ("initializer", "['he_uniform']")),
    (lambda: layers.Conv2D(4, 3, w_init=None), TypeError, ("initializer", "None")),
    (lambda: layers.Conv2D(0, 3), ValueError, ("Conv2D filters", "0")),
    (lambda: layers.Conv2D(4.5, 3), ValueError, ("Conv2D filters", "4.5")),
    (lambda: layers.Conv2D(4, 2.5), ValueError, ("Conv2D kernel", "2.5")),
    (lambda: layers.Conv2D(4, 3, stride=0), ValueError, ("Conv2D stride", "0")),
    (lambda: layers.Conv2D(4, 3, padding="full"), ValueError, ("padding", "'full'")),
    (lambda: layers.MaxPool2D(0), ValueError, ("MaxPool2D pool", "0")),
    (lambda: layers.AvgPool2D(2, stride=1.5), ValueError, ("AvgPool2D stride", "1.5")),
    (lambda: layers.mlp([784, 12.5, 10]), ValueError, ("mlp sizes[1]", "12.5")),
    (lambda: layers.mlp([784, True, 10]), TypeError, ("mlp sizes[1]", "True")),
    (lambda: layers.mlp([784, "10"]), TypeError, ("mlp sizes[1]", "'10'")),
    (lambda: layers.mlp("784,10"), ValueError, ("mlp", "'784,10'")),
    (lambda: layers.mlp([784, 10], dropout="0.5"), TypeError, ("mlp dropout", "'0.5'")),
], ids=needle_ids)
def test_layer_factories_name_a_bad_argument(make, exc, needles):
    refused(make, exc, *needles)


@pytest.mark.parametrize("args, exc, needles", [
    ((), ValueError, ("serial() needs at least one layer",)),
    ((Dense,), TypeError, ("argument 0", "the factory Dense", "call it")),
    ((Dense(2), "relu"), TypeError, ("argument 1", "'relu'", "not a layer")),
    ((np.tanh,), TypeError, ("argument 0", "tanh", "not a layer")),
    ((Relu, None), TypeError, ("argument 1", "None", "not a layer")),
    ((layers.Dropout,), TypeError, ("the factory Dropout", "call it")),
], ids=needle_ids)
def test_serial_takes_at_least_one_layer_and_only_layers(args, exc, needles):
    refused(lambda: serial(*args), exc, *needles)


def test_a_serial_spec_without_layers_is_a_spec_error():
    refused(lambda: layers.build({"type": "serial", "layers": []}), layers.SpecError, "at least one layer")


@pytest.mark.parametrize("how", ["apply", "vjp", "predict", "train_step", "inplace_train_step", "images"])
def test_a_feature_count_mismatch_names_both_counts(how):
    model = fnn.mlp([784, 16, 10])
    _, params = model.init(random.key(0), (-1, 784))
    x, y = np.ones((4, 100), np.float32), np.array([0, 1, 2, 3])
    calls = {
        "apply": lambda: model.apply(params, x),
        "vjp": lambda: model.vjp(params, x),
        "predict": lambda: fnn.predict(model, params, x),
        "train_step": lambda: train.make_train_step(model, losses.softmax_cross_entropy, optim.adam())(
            params, optim.adam().init(params), (x, y)),
        "inplace_train_step": lambda: train.make_inplace_train_step(model, losses.softmax_cross_entropy, optim.adam())(
            params, optim.adam().init(params), (x, y)),
        "images": lambda: model.apply(params, np.ones((4, 28, 28, 1), np.float32)),
    }
    got = 1 if how == "images" else 100
    message = refused(calls[how], ValueError, f"Dense(16) expects 784 input features, got {got}")
    assert "gufunc" not in message


@pytest.mark.parametrize("how", ["make_train_step", "make_inplace_train_step", "fit", "save_model"])
def test_shape_only_placeholders_never_train(how, tmp_path):
    model, _, x, y = tiny()
    _, placeholders = model.init(None, (-1, 6))
    opt = optim.adam()
    if how == "fit":
        call = lambda: fnn.fit(model, x, y, params=placeholders, epochs=1, verbose=0)  # noqa: E731
    elif how == "save_model":
        call = lambda: fnn.save_model(tmp_path / "m.npz", model, placeholders, (-1, 6))  # noqa: E731
    else:
        step = getattr(train, how)(model, losses.softmax_cross_entropy, opt)
        call = lambda: step(placeholders, opt.init(placeholders), (x, y))  # noqa: E731
    refused(call, ValueError, "params 0.w", "shape-only placeholder", "init(None, ...)", "init with a key")
    assert not (tmp_path / "m.npz").exists()


# ---------------------------------------------------------------- the bare train steps and the losses


BATCHES = {
    "empty batch": (lambda x, y: (x[:0], y[:0]), ValueError, ("empty", "(0, 6)")),
    "label -1": (lambda x, y: (x, np.array([0, 1, 2, 0, -1])), ValueError, ("0..2", "-1..2")),
    "label out of range": (lambda x, y: (x, np.array([0, 1, 2, 0, 3])), ValueError, ("0..2", "0..3")),
    "float labels": (lambda x, y: (x, y.astype(np.float64)), ValueError, ("whole class numbers", "float64")),
    "bool labels": (lambda x, y: (x, y > 0), ValueError, ("whole class numbers", "bool")),
    "labels shaped (n, 1)": (lambda x, y: (x, y[:, None]), ValueError, ("(5, 1)", "y.ravel()")),
    "fewer labels than inputs": (lambda x, y: (x, y[:3]), ValueError, ("5 inputs", "3 labels")),
    "one example, not a batch": (lambda x, y: (x[0], y[:1]), ValueError, ("(6,)", "x[None]")),
    "NaN inputs": (lambda x, y: (np.where(x > 1, np.nan, x).astype(np.float32), y), train.NonFiniteLoss, ("nan",)),
}


@pytest.mark.parametrize("make", ["make_train_step", "make_inplace_train_step"])
@pytest.mark.parametrize("case", list(BATCHES))
def test_bare_train_steps_refuse_a_bad_batch(case, make):
    model, params, x, y = tiny()
    bad, exc, needles = BATCHES[case]
    opt = optim.adam()
    step = getattr(train, make)(model, losses.softmax_cross_entropy, opt)
    params, state, _ = step(params, opt.init(params), (x, y))  # the step's own results (updated in place by the in-place step)
    before = fnn.tree.tree_copy(params)
    refused(lambda: step(params, state, bad(x, y)), exc, *needles)
    assert fnn.tree.tree_equal(params, before)


Z3 = np.zeros((5, 3), np.float32)
Z1 = np.zeros((5, 1), np.float32)


@pytest.mark.parametrize("loss, z, t, needles", [
    (losses.softmax_cross_entropy, Z3, np.array([0, 1, 2, 0, -1]), ("0..2", "-1..2")),
    (losses.softmax_cross_entropy, Z3, np.array([0, 1, 2, 0, 7]), ("0..2", "0..7")),
    (losses.softmax_cross_entropy, Z3, np.ones((5, 2), np.float32), ("(5, 3) one-hot", "(5, 2)")),
    (losses.softmax_cross_entropy, Z3, np.zeros((5, 1), np.int64), ("(5, 1)", "y.ravel()")),
    (losses.softmax_cross_entropy, Z3[:0], np.zeros(0, np.int64), ("empty",)),
    (losses.categorical_cross_entropy, Z3 + 1 / 3, np.array([0.0, 1, 2, 0, 1]), ("whole class numbers", "float64")),
    (losses.categorical_cross_entropy, Z3 + 1 / 3, np.zeros((5, 1), np.int64), ("(5, 1)", "y.ravel()")),
    (losses.categorical_cross_entropy, Z3[:0] + 1 / 3, np.zeros(0, np.int64), ("empty",)),
    (losses.binary_cross_entropy, Z1, np.array([0, 1, 2, 0, 1]), ("[0, 1]", "2.0")),
    (losses.binary_cross_entropy, Z1, np.zeros(4), ("(4,)", "(5, 1)")),
    (losses.mse, Z1, np.zeros(4), ("(4,)", "(5, 1)")),
    (losses.mae, Z1[:0], np.zeros(0), ("empty",)),
], ids=needle_ids)
def test_losses_refuse_targets_that_do_not_fit(loss, z, t, needles):
    message = refused(lambda: loss.value_and_grad(z, t), ValueError, *needles)
    assert "broadcast" not in message and "reshape" not in message


# ---------------------------------------------------------------- model files


def test_saving_into_a_missing_folder_names_the_file_not_a_temporary(tmp_path):
    model, params, _, _ = tiny()
    target = tmp_path / "no" / "such" / "model.npz"
    message = refused(lambda: fnn.save_model(target, model, params, (-1, 6)), FileNotFoundError, str(target), "folder does not exist")
    assert ".tmp" not in message


@pytest.mark.parametrize("path, exc, needles", [
    (b"model\x00.npz", serialization.ModelFileError, ("NUL byte",)),
    ("model\x00.npz", serialization.ModelFileError, ("NUL byte",)),
    (3, TypeError, ("load_model", "file path", "int")),
    (io.BytesIO(b"PK"), TypeError, ("load_model", "file path", "BytesIO")),
    (None, TypeError, ("load_model", "file path", "NoneType")),
], ids=needle_ids)
def test_load_model_refuses_what_is_no_path(path, exc, needles):
    refused(lambda: fnn.load_model(path), exc, *needles)


@pytest.mark.parametrize("case", ["model and params swapped", "input_shape a number", "NaN weights", "params of another model",
                                  "NaN in metadata", "a path with a NUL byte"])
def test_save_model_refuses_before_writing(case, tmp_path):
    model, params, _, _ = tiny()
    path = tmp_path / "m.npz"
    other = fnn.mlp([6, 5, 3]).init(random.key(0), (-1, 6))[1]
    nan = fnn.tree.tree_map(lambda a: np.full_like(a, np.nan), params)
    calls = {
        "model and params swapped": (lambda: fnn.save_model(path, params, model, (-1, 6)), TypeError, ("takes a Layer as model", "dict")),
        "input_shape a number": (lambda: fnn.save_model(path, model, params, 6), TypeError, ("input_shape", "6")),
        "NaN weights": (lambda: fnn.save_model(path, model, nan, (-1, 6)), ValueError, ("NaN",)),
        "params of another model": (lambda: fnn.save_model(path, model, other, (-1, 6)), ValueError, ("(6, 5)", "(6, 4)")),
        "NaN in metadata": (lambda: fnn.save_model(path, model, params, (-1, 6), {"acc": np.float32("nan")}), ValueError,
                            ("metadata.acc", "nan")),
        "a path with a NUL byte": (lambda: fnn.save_model(str(path) + "\x00", model, params, (-1, 6)), ValueError, ("NUL byte",)),
    }
    call, exc, needles = calls[case]
    refused(call, exc, *needles)
    assert list(tmp_path.iterdir()) == []


def test_numpy_scalars_in_metadata_come_back_as_numbers(tmp_path):
    model, params, _, _ = tiny()
    fnn.save_model(tmp_path / "m.npz", model, params, (-1, 6), {"acc": np.float32(0.5), "epochs": np.int64(3)})
    assert fnn.load_model(tmp_path / "m.npz").metadata == {"acc": 0.5, "epochs": 3}
