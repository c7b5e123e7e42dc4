"""Evaluate a trained model: ``metrics.json``, pictures and a Markdown report with insights.

>>> import fnn
>>> model = fnn.mlp([4, 3])
>>> _, params = model.init(fnn.random.key(0), (-1, 4))
>>> x, y = fnn.random.normal(fnn.random.key(1), (50, 4)), np.arange(50) % 3
>>> result = evaluate(model, params, x, y, classes=["a", "b", "c"])
>>> result["n"], len(result["confusion_matrix"]), sum(c["support"] for c in result["per_class"])
(50, 3, 50)

Three layers, each callable on its own:

- :func:`analyze` turns labels and logits into a JSON-able dict of metrics
  (pure NumPy, no files; this is what the speed benchmark times);
- :func:`evaluate` runs the forward pass, calls :func:`analyze`, and with an
  ``out_dir`` writes ``metrics.json``, the PNGs (:mod:`fnn.evaluation.plotting`) and ``report.md``;
- :func:`evaluate_run` does that for a run folder or model file, loading the
  dataset named in the model's metadata and writing into ``<run>/eval/``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from fnn import layers, losses, metrics, serialization, tasks
from fnn.evaluation import markdown
from fnn.train import predict_outputs
from fnn.training import runs

METRICS_FILE = "metrics.json"
REPORT_FILE = "report.md"
EVAL_DIR = "eval"
CONFIDENCE_BANDS = (0.5, 0.9, 0.99)  # edges of the confidence bands in the insights
SPLITS = ("test", "val")


class EvaluationError(ValueError):
    """A run, model, dataset or split that cannot be evaluated; the message names it."""


# ---------------------------------------------------------------- numbers


def class_probabilities(outputs, task):
    """``(n, K)`` class probabilities of a classifier's outputs: a binary model's one output becomes two columns."""
    p = task.proba(outputs)
    return np.stack([1 - p, p], axis=1) if task.kind == "binary" else p


def task_loss(task):
    """The loss a classifier of ``task`` reports: softmax CE of logits, CE of probabilities, or binary CE of logits."""
    if task.kind == "binary":
        return losses.binary_cross_entropy
    return losses.categorical_cross_entropy if task.outputs == "probabilities" else losses.softmax_cross_entropy


def analyze(y_true, logits, classes=None, n_bins: int = 15, top_pairs: int = 10, task=None) -> dict:
    """All metrics of a classifier's outputs ``logits: (n, K)`` against labels ``y_true: (n,)``, as a JSON-able dict.

    ``task`` (:mod:`fnn.tasks`) says what the outputs are: logits by default,
    probabilities for a model ending in Softmax, one logit for a binary model.
    Keys: ``n``, ``accuracy``, ``top_k_accuracy`` (k = 2, 3, 5 where k < K),
    ``loss`` (the cross-entropy training reports for that task),
    ``ece`` (15-bin expected calibration error), ``per_class`` (precision,
    recall, F1, support per class), ``macro`` and ``weighted`` averages,
    ``confusion_matrix`` (counts, rows = true class), ``most_confused`` pairs,
    and ``confidence`` (how the top probability relates to errors).
    """
    y_true = np.asarray(y_true)
    task = tasks.MULTICLASS_LOGITS if task is None else task
    if task.kind not in ("multiclass", "binary"):
        raise EvaluationError(f"the report is for classifiers; this model's task is {tasks.name_of(task)} (use fnn.evaluate)")
    probs = class_probabilities(logits, task)
    k = probs.shape[1]
    names = [str(c) for c in classes] if classes is not None else [str(i) for i in range(k)]
    pred = probs.argmax(axis=1)
    cm = metrics.confusion_matrix(y_true, pred, k)
    prf = metrics.precision_recall_f1(cm=cm)
    return {
        "n": int(len(y_true)),
        "classes": names,
        "accuracy": metrics.accuracy(y_true, pred),
        "top_k_accuracy": {str(t): metrics.top_k_accuracy(y_true, probs, t) for t in (2, 3, 5) if t < k},
        "loss": task_loss(task).apply(logits, y_true) if len(y_true) else 0.0,
        "ece": metrics.expected_calibration_error(y_true, probs, n_bins),
        "per_class": [
            {"class": names[c], "precision": float(prf["precision"][c]), "recall": float(prf["recall"][c]),
             "f1": float(prf["f1"][c]), "support": int(prf["support"][c])}
            for c in range(k)
        ],
        "macro": prf["macro"],
        "weighted": prf["weighted"],
        "confusion_matrix": cm.tolist(),
        "most_confused": [{"true": names[i], "pred": names[j], "count": n, "share_of_true": n / int(cm[i].sum())}
                          for i, j, n in metrics.most_confused(cm, top_pairs)],
        "confidence": confidence_summary(y_true, probs, n_bins),
    }


def confidence_summary(y_true, probs, n_bins: int = 15) -> dict:
    """How the top probability relates to errors.

    ``mean_correct`` / ``mean_wrong``: mean confidence of right and wrong predictions;
    ``bands``: for confidence in ``[0, 0.5)``, ``[0.5, 0.9)``, ``[0.9, 0.99)``, ``[0.99, 1]``,
    the share of examples and the accuracy there; ``confident_errors``: mistakes made
    with confidence >= 0.9; ``bins``: the reliability table of :func:`fnn.metrics.calibration_bins`.
    """
    conf = probs.max(axis=1)
    ok = probs.argmax(axis=1) == y_true
    band = np.digitize(conf, CONFIDENCE_BANDS)
    count = np.bincount(band, minlength=len(CONFIDENCE_BANDS) + 1)
    right = np.bincount(band, weights=ok, minlength=len(CONFIDENCE_BANDS) + 1)
    edges = (0.0, *CONFIDENCE_BANDS, 1.0)
    n = max(1, len(conf))
    table = metrics.calibration_bins(y_true, probs, n_bins)
    return {
        "mean": float(conf.mean()) if len(conf) else 0.0,
        "mean_correct": float(conf[ok].mean()) if ok.any() else None,
        "mean_wrong": float(conf[~ok].mean()) if (~ok).any() else None,
        "bands": [{"low": edges[b], "high": edges[b + 1], "share": int(count[b]) / n,
                   "count": int(count[b]), "accuracy": float(right[b] / count[b]) if count[b] else None}
                  for b in range(len(count))],
        "confident_errors": int(((conf >= 0.9) & ~ok).sum()),
        "errors": int((~ok).sum()),
        "bins": {key: np.asarray(v).tolist() for key, v in table.items()},
    }


# ---------------------------------------------------------------- one model


def transform_for(metadata: dict):
    """The uint8 -> float32 transform a model was trained with, from its ``preprocessing`` metadata."""
    from fnn import datasets, serialization

    mean, std = serialization.standardization(metadata)
    grayscale = bool(serialization.preprocessing_of(metadata).get("grayscale", False))
    return datasets.make_transform(grayscale=grayscale, mean=mean, std=std)


def evaluate(model, params, x, y, classes=None, out_dir=None, *, transform=None, history=None,
             pictures=True, title="Evaluation", about=None, diagnostics=None, task=None, state=None) -> dict:
    """Forward pass over ``x`` and :func:`analyze`; with ``out_dir``, write the files too.

    Args:
      x: ``(n, ...)`` inputs; stored images (uint8) when ``transform`` is given,
        otherwise already the model's float32 features.
      y: ``(n,)`` integer labels.
      transform: stored batch -> features (e.g. :func:`transform_for`'s result).
      history: per-epoch training records (``metrics.jsonl``) for the curves.
      pictures: draw the PNGs (``out_dir`` only).
      about: extra JSON-able facts stored under ``"about"`` (model path, dataset, split).
      diagnostics: the run's ``diagnostics.jsonl`` rows (:mod:`fnn.training.diagnostics`): adds their
        warnings and last epoch under ``"diagnostics"``, their pictures and a saliency map.
      task: what the model's outputs are (:mod:`fnn.tasks`; a saved model's ``task`` metadata); by default its last layer says.
      state: a stateful model's state (BatchNorm's running averages).

    Returns the :func:`analyze` dict plus ``seconds`` (forward pass and metrics)
    and, when written, ``out_dir``, ``files`` (picture name -> path) and ``report`` (the path of ``report.md``).
    """
    t0 = time.perf_counter()
    features = transform(x) if transform is not None else x
    logits = predict_outputs(model, params, features, state=state)
    task = tasks.for_model(model, logits.shape[-1]) if task is None else task
    result = analyze(y, logits, classes, task=task)
    result["seconds"] = time.perf_counter() - t0
    result["about"] = dict(about or {})
    if diagnostics:
        result["diagnostics"] = {"warnings": [w for r in diagnostics for w in r.get("warnings", [])],
                                 "epoch": diagnostics[-1]["epoch"], "probe": diagnostics[-1]["probe"],
                                 "layers": [{k: v for k, v in lay.items() if k != "hist"} for lay in diagnostics[-1]["layers"]]}
    if out_dir is not None:
        out = Path(serialization.check_output(out_dir, folder=True))
        out.mkdir(parents=True, exist_ok=True)
        files = {}
        if pictures:
            images = x if transform is not None else None
            files = draw(out, result, class_probabilities(logits, task), y, images, params, history,
                         model=model, features=features, state=state)
            if diagnostics:
                files.update(draw_diagnostics(out, diagnostics, history, model, params, features, y, images, result["classes"]))
        result["files"] = {k: str(v) for k, v in files.items()}
        result["out_dir"] = str(out)
        text = json.dumps(result, indent=2)
        serialization.atomic_write(out / METRICS_FILE, lambda f: f.write(text.encode()))
        markdown.write(out / REPORT_FILE, result, {k: Path(v).name for k, v in files.items()}, title)
        result["report"] = str(out / REPORT_FILE)
    return result


def draw(out, result, probs, y, images=None, params=None, history=None, *, model=None, features=None, state=None) -> dict:
    """Write every PNG that fits the data into ``out``; returns name -> path.

    With the ``model`` (and its inputs ``features``, its ``state``), a convolutional net also gets its first conv
    layer's filters (``conv_filters``) and that layer's feature maps for the first example (``feature_maps``).
    """
    from fnn.evaluation import plotting

    cm, names = np.asarray(result["confusion_matrix"]), result["classes"]
    per = result["per_class"]
    files = {
        "confusion_matrix": plotting.confusion_matrix(cm, names, out / "confusion_matrix.png"),
        "per_class_accuracy": plotting.per_class_accuracy(
            [c["recall"] for c in per], names, out / "per_class_accuracy.png",
            support=[c["support"] for c in per], overall=result["accuracy"]),
        "confused_pairs": plotting.confused_pairs(cm, names, out / "confused_pairs.png"),
        "calibration": plotting.reliability_diagram(result["confidence"]["bins"], out / "calibration.png"),
    }
    if history:
        files["training_curves"] = plotting.training_curves(history, out / "training_curves.png")
    if images is not None and _is_image(images):
        for name, fn in (("misclassified", plotting.misclassified_examples),
                         ("highest_loss", plotting.highest_loss_examples),
                         ("sample_predictions", plotting.sample_predictions)):
            files[name] = fn(images, y, probs, names, out / f"{name}.png")
    w = _first_weights(params)
    if w is not None and images is not None and _is_image(images) and w.shape[0] == np.prod(images.shape[1:]):
        files["first_layer_weights"] = plotting.first_layer_weights(w, out / "first_layer_weights.png", images.shape[1:3])
    conv = first_conv(model) if model is not None else None
    if conv is not None:
        index, last = conv
        files["conv_filters"] = plotting.conv_filters(params[str(index)]["w"], out / "conv_filters.png")
        if features is not None and len(features):
            maps = block_outputs(model, params, features[:1], last, state)[0]
            shown = images[0] if images is not None and np.ndim(images[0]) in (2, 3) else maps.mean(axis=-1)
            after = ", ".join(model.children[i].spec["type"] for i in range(index + 1, last + 1))
            files["feature_maps"] = plotting.feature_maps(
                shown, maps, out / "feature_maps.png",
                title="First conv layer" + (f" (with {after})" if after else "") + ", first example")
    return files


def first_conv(model):
    """``(index, last)`` of a serial model's first ``Conv2D`` child and of the last child of its block (the
    BatchNorm and activation right after it), or None when it has no convolution."""
    specs = [c.spec["type"] for c in model.children] if model.children else []
    if "Conv2D" not in specs:
        return None
    index = specs.index("Conv2D")
    last = index
    while last + 1 < len(specs) and specs[last + 1] in ("BatchNorm", "Relu", "LeakyRelu", "Sigmoid", "Tanh"):
        last += 1
    return index, last


def block_outputs(model, params, x, last, state=None):
    """The output of a serial model's child ``last`` for inputs ``x`` (inference: running averages, no dropout)."""
    for i, child in enumerate(model.children[: last + 1]):
        s = (state or {}).get(str(i)) if child.stateful else None
        x = layers.apply_model(child, params[str(i)], x, state=s)
    return x


def draw_diagnostics(out, rows, history, model, params, features, y, images=None, classes=None, n_saliency=8) -> dict:
    """The training-diagnostics PNGs of a run (``rows`` from ``diagnostics.jsonl``) and a saliency map
    of the first ``n_saliency`` examples (``features``: the model's inputs; ``images``: what to show)."""
    from fnn.evaluation import plotting
    from fnn.training import diagnostics

    files = {"gradient_norms": plotting.gradient_norms(rows, out / "gradient_norms.png"),
             "activation_histograms": plotting.activation_histograms(rows, out / "activation_histograms.png"),
             "dead_units": plotting.dead_units(rows, out / "dead_units.png")}
    if history:
        files["overfitting"] = plotting.overfitting_curves(history, out / "overfitting.png")
    shown = images if images is not None and _is_image(images) else None
    if shown is not None or int(np.sqrt(features.shape[1])) ** 2 == features.shape[1]:
        x, t = features[:n_saliency], np.asarray(y)[:n_saliency]
        sal = diagnostics.saliency(model, params, x, t)
        files["saliency"] = plotting.saliency_maps(x if shown is None else shown[:n_saliency], sal, t,
                                                   layers.softmax(predict_outputs(model, params, x)), classes,
                                                   out / "saliency.png")
    return files


def _is_image(x) -> bool:
    """2-D grayscale examples ``(n, h, w)``: the example grids and weight tiles make sense."""
    return np.ndim(x) == 3 and min(np.shape(x)[1:]) >= 4


def _first_weights(params):
    """The first Dense layer's ``w`` of a serial model's params (``{"0": {"w": ...}}``), or None."""
    for key in sorted(params or {}, key=lambda s: int(s) if s.isdigit() else 1 << 30):
        p = params[key]
        if isinstance(p, dict) and "w" in p and np.ndim(p["w"]) == 2:
            return p["w"]
        if p:
            return None
    return None


# ---------------------------------------------------------------- a run folder


def evaluate_run(run_or_model, dataset=None, split="test", out_dir=None, *, data_dir=None, pictures=True) -> dict:
    """Evaluate a run folder's ``model.npz`` (or a model file) on a dataset split.

    ``dataset`` defaults to the one the run was trained on (its ``config.yaml``
    names it, a path for the user's own data), else the model's metadata; ``split`` is
    ``"test"`` or ``"val"`` (the run's own validation split, rebuilt from its
    ``config.yaml``: same fraction, same seed). Files go to ``out_dir``, by default
    ``<run>/eval/`` (``<model stem>-eval/`` beside a bare model file).
    Raises :class:`EvaluationError` on a bad path, dataset or split.
    """
    from fnn import datasets

    if split not in SPLITS:
        raise EvaluationError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    try:
        path = runs.model_path(run_or_model)
        loaded = serialization.load_model(path)
    except (runs.RunError, serialization.ModelFileError) as e:
        raise EvaluationError(str(e)) from None
    run = Path(run_or_model) if Path(run_or_model).is_dir() else None
    out = Path(out_dir) if out_dir is not None else (run / EVAL_DIR if run else path.with_name(path.stem + "-eval"))
    try:
        serialization.check_output(out, folder=True)  # before any work: a device or a file there is refused
    except serialization.OutputError as e:
        raise EvaluationError(str(e)) from None
    meta = loaded.metadata
    name = dataset or _trained_on(run) or meta.get("dataset")
    if not name:
        raise EvaluationError(f"{path}: the model does not name its dataset; pass one (e.g. --dataset mnist)")
    try:
        if split == "val":
            x, y, transform = _validation_split(run, name, data_dir)
        else:
            ds = datasets.load(name, data_dir=data_dir)
            x, y, transform = ds.x_test, ds.y_test, transform_for(meta)
    except datasets.DatasetError as e:
        raise EvaluationError(str(e)) from None
    if len(y) == 0:
        raise EvaluationError(f"dataset {name!r} has no {split} examples")
    classes = meta.get("classes")
    k = loaded.model.init(None, loaded.input_shape)[0][-1]
    k = 2 if k == 1 else k  # a binary model: one logit, two classes
    if classes is not None and len(classes) != k:
        raise EvaluationError(f"{path}: the model has {k} outputs but its metadata lists {len(classes)} classes")
    if int(np.max(y)) >= k:
        raise EvaluationError(f"dataset {name!r} has labels up to {int(np.max(y))}, but the model has {k} outputs")
    features = transform(x[:1]).shape[1:]
    if tuple(features) != tuple(loaded.input_shape[1:]):
        raise EvaluationError(f"dataset {name!r} gives inputs of shape {tuple(features)}, "
                              f"the model takes {tuple(loaded.input_shape[1:])}")
    from fnn.training.diagnostics import read

    try:
        summary = runs.read_summary(run) if run else {}
        history = runs.read_metrics(run) if run else None
        diagnostics = read(run) if run else None
    except runs.RunError as e:
        raise EvaluationError(str(e)) from None
    about = {"model": str(path), "run": str(run) if run else None, "dataset": name, "split": split,
             "summary_test_accuracy": summary.get("test_accuracy"), "summary_test_loss": summary.get("test_loss")}
    title = f"Evaluation of {run.name if run else path.name} on {name} ({split})"
    task = tasks.from_name(meta["task"]) if "task" in meta else None
    return evaluate(loaded.model, loaded.params, x, y, classes, out, transform=transform, history=history,
                    pictures=pictures, title=title, about=about, diagnostics=diagnostics, task=task, state=loaded.state)


def _trained_on(run):
    """The ``dataset`` entry of a run's ``config.yaml`` (a name or a path), or None."""
    if run is None or not (run / runs.CONFIG).is_file():
        return None
    from fnn.training.config import ConfigError, read_mapping

    try:
        name = read_mapping(run / runs.CONFIG).get("dataset")
    except ConfigError as e:
        raise EvaluationError(str(e)) from None
    return name if isinstance(name, str) else None


def _validation_split(run, name, data_dir):
    """``(x_val, y_val, transform)`` exactly as ``fit`` split and preprocessed them."""
    if run is None or not (run / runs.CONFIG).is_file():
        raise EvaluationError("--split val needs a run folder with its config.yaml (the split is rebuilt from it)")
    from fnn.training.config import ConfigError, load_config
    from fnn.training.experiment import prepare_data

    try:
        config = load_config(run / runs.CONFIG)
        if name != config.dataset:
            config = load_config(run / runs.CONFIG, dataset=name)
        data = prepare_data(config, data_dir)
    except ConfigError as e:
        raise EvaluationError(f"{run}: {e}") from None
    if len(data["y_val"]) == 0:
        raise EvaluationError(f"{run}: the run was trained without a validation split (val_split 0)")
    return data["x_val"], data["y_val"], data["transform"]


__all__ = ["EvaluationError", "analyze", "confidence_summary", "transform_for", "evaluate", "draw", "draw_diagnostics",
           "evaluate_run", "first_conv", "block_outputs"]
