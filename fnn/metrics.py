"""Classification metrics, vectorized over samples (NumPy only).

Conventions: ``y_true`` and ``y_pred`` are integer labels of shape ``(n,)`` in
``0 .. num_classes - 1``; ``probs`` are class probabilities ``(n, classes)``
(rows sum to 1); ``scores`` are any per-class scores (logits or probabilities)
where a larger value means "more likely". Everything is one pass of NumPy
array operations: no Python loop runs over samples.

Zero division is defined, never NaN (see :func:`precision_recall_f1`):

- precision of a class that is never predicted is 0;
- recall of a class that never occurs is 0;
- F1 is 0 when precision + recall is 0;
- a normalized confusion-matrix row (column) with no samples is all 0.

>>> y_true = np.array([0, 0, 1, 2])
>>> y_pred = np.array([0, 1, 1, 1])
>>> confusion_matrix(y_true, y_pred, 3)
array([[1, 1, 0],
       [0, 1, 0],
       [0, 1, 0]])
>>> accuracy(y_true, y_pred)
0.5
"""

from __future__ import annotations

import numpy as np

NORMALIZE = ("true", "pred", "all")


def _labels(y, name="labels") -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or (y.size and y.dtype.kind not in "iub"):
        raise ValueError(f"{name} must be a 1-D integer array, got {y.dtype}{y.shape}")
    return y.astype(np.int64, copy=False)


def _pair(y_true, y_pred):
    y_true, y_pred = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}")
    return y_true, y_pred


def _div(num, den) -> np.ndarray:
    """``num / den`` elementwise, with 0 wherever ``den == 0``."""
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den != 0)
    return out


# ---------------------------------------------------------------- accuracy


def accuracy(y_true, y_pred) -> float:
    """Fraction of correct labels: ``mean(y_pred == y_true)``; 0.0 for no samples."""
    y_true, y_pred = _pair(y_true, y_pred)
    return float(np.mean(y_true == y_pred)) if len(y_true) else 0.0


def top_k_accuracy(y_true, scores, k: int = 5) -> float:
    """Fraction of samples whose true class is among the ``k`` highest ``scores``.

    ``scores: (n, classes)``. A sample is a hit when fewer than ``k`` classes score
    strictly higher than its true class, so ties go in the sample's favour.
    ``k = 1`` is plain accuracy when there are no ties.
    """
    y_true = _labels(y_true, "y_true")
    scores = np.asarray(scores)
    if scores.ndim != 2 or len(scores) != len(y_true):
        raise ValueError(f"scores must be (n, classes) with n = {len(y_true)}, got {scores.shape}")
    if not 1 <= k:
        raise ValueError(f"k must be >= 1, got {k}")
    if not len(y_true):
        return 0.0
    true_score = scores[np.arange(len(y_true)), y_true][:, None]
    higher = (scores > true_score).sum(axis=1)
    return float(np.mean(higher < k))


# ---------------------------------------------------------------- confusion matrix


def confusion_matrix(y_true, y_pred, num_classes=None, normalize=None) -> np.ndarray:
    """``C[i, j]`` = number of samples of true class ``i`` predicted as class ``j``.

    Shape ``(num_classes, num_classes)``; ``num_classes`` defaults to
    ``max(y_true, y_pred) + 1``. Counted with one ``bincount`` of ``i * K + j``.

    ``normalize``:
      - None: integer counts;
      - ``"true"`` (rows): ``C[i, j] / sum_j C[i, j]``, so row ``i`` holds class ``i``'s
        recall on the diagonal;
      - ``"pred"`` (columns): ``C[i, j] / sum_i C[i, j]``, precision on the diagonal;
      - ``"all"``: ``C / n``.
      A row or column with no samples normalizes to zeros.
    """
    y_true, y_pred = _pair(y_true, y_pred)
    if num_classes is None:
        num_classes = int(max(y_true.max(initial=-1), y_pred.max(initial=-1))) + 1
    k = int(num_classes)
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.size and (y.min() < 0 or y.max() >= k):
            raise ValueError(f"{name} holds labels outside 0..{k - 1}")
    cm = np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)
    if normalize is None:
        return cm
    if normalize == "true":
        return _div(cm, cm.sum(axis=1, keepdims=True))
    if normalize == "pred":
        return _div(cm, cm.sum(axis=0, keepdims=True))
    if normalize == "all":
        return _div(cm, cm.sum())
    raise ValueError(f"normalize must be None or one of {NORMALIZE}, got {normalize!r}")


def most_confused(cm, k: int = 10) -> list[tuple[int, int, int]]:
    """The ``k`` largest off-diagonal cells of a count matrix: ``[(true, pred, count), ...]``.

    Sorted by count (descending), then by ``(true, pred)``; zero cells are left out.

    >>> most_confused(np.array([[5, 2, 0], [0, 4, 3], [1, 0, 6]]), 2)
    [(1, 2, 3), (0, 1, 2)]
    """
    cm = np.asarray(cm)
    off = cm * (1 - np.eye(len(cm), dtype=cm.dtype))
    flat = np.argsort(-off, axis=None, kind="stable")[:k]
    rows, cols = np.unravel_index(flat, cm.shape)
    return [(int(i), int(j), int(cm[i, j])) for i, j in zip(rows, cols) if off[i, j] > 0]


# ---------------------------------------------------------------- precision, recall, F1


def precision_recall_f1(y_true=None, y_pred=None, num_classes=None, cm=None) -> dict:
    """Per-class precision, recall, F1 and support, with macro and weighted averages.

    From the confusion matrix ``C`` (given as ``cm`` or counted from the labels),
    for class ``c``: ``tp = C[c, c]``, ``predicted = sum_i C[i, c]``,
    ``support = sum_j C[c, j]``, and

    - ``precision = tp / predicted``, and 0 for a class that is never predicted;
    - ``recall = tp / support``, and 0 for a class that never occurs;
    - ``f1 = 2 p r / (p + r)``, and 0 when ``p + r = 0``.

    Averages:

    - ``macro``: the unweighted mean over the classes that occur in ``y_true`` or
      in ``y_pred`` (a class in neither has nothing to measure; this matches
      scikit-learn when its ``labels`` are inferred from the data);
    - ``weighted``: the mean weighted by support (classes that never occur weigh 0).

    Returns a dict of float64 arrays ``precision``, ``recall``, ``f1`` and an int
    array ``support`` (each ``(K,)``), and ``macro`` / ``weighted`` dicts with
    ``precision``, ``recall``, ``f1`` as floats.
    """
    if cm is None:
        cm = confusion_matrix(y_true, y_pred, num_classes)
    cm = np.asarray(cm)
    tp = np.diag(cm)
    predicted, support = cm.sum(axis=0), cm.sum(axis=1)
    precision, recall = _div(tp, predicted), _div(tp, support)
    f1 = _div(2 * precision * recall, precision + recall)
    seen = (predicted + support) > 0
    total = support.sum()
    out = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    out["macro"] = {m: float(out[m][seen].mean()) if seen.any() else 0.0 for m in ("precision", "recall", "f1")}
    out["weighted"] = {m: float(out[m] @ support / total) if total else 0.0 for m in ("precision", "recall", "f1")}
    return out


# ---------------------------------------------------------------- log loss


def example_log_loss(y_true, probs, eps: float = 1e-7) -> np.ndarray:
    """Per-sample negative log-likelihood ``-log(clip(probs[i, y_i], eps, 1))``, shape ``(n,)``."""
    y_true = _labels(y_true, "y_true")
    probs = np.asarray(probs)
    p = probs[np.arange(len(y_true)), y_true]
    return -np.log(np.clip(p, eps, 1.0))


def log_loss(y_true, probs, eps: float = 1e-7) -> float:
    """Mean negative log-likelihood (cross-entropy) ``-(1/n) sum_i log p[i, y_i]``.

    Probabilities are clipped to ``[eps, 1]``, so a confident mistake costs at most
    ``-log(eps)`` (16.1 for the default) instead of infinity.
    """
    losses = example_log_loss(y_true, probs, eps)
    return float(losses.mean(dtype=np.float64)) if losses.size else 0.0


# ---------------------------------------------------------------- ROC (binary)


def roc_curve(y_true, scores):
    """Binary ROC curve: ``(fpr, tpr, thresholds)``, each ``(m,)``.

    ``y_true`` holds 0 (negative) and 1 (positive); ``scores: (n,)`` is larger for
    "more positive". Predicting positive when ``score >= thresholds[j]`` gives
    ``tpr[j] = TP / P`` and ``fpr[j] = FP / N``. Thresholds are the distinct
    scores in decreasing order, preceded by ``+inf`` (the point (0, 0)); tied
    scores move the curve diagonally. Raises ValueError when ``y_true`` lacks
    either class (the rates are then undefined).
    """
    y_true = _labels(y_true, "y_true")
    scores = np.asarray(scores, np.float64).ravel()
    if len(scores) != len(y_true):
        raise ValueError(f"y_true has {len(y_true)} labels but scores has {len(scores)}")
    if not np.isin(y_true, (0, 1)).all():
        raise ValueError("roc_curve needs binary labels 0 and 1")
    pos = int(y_true.sum())
    neg = len(y_true) - pos
    if pos == 0 or neg == 0:
        raise ValueError(f"roc_curve needs both classes, got {pos} positive and {neg} negative")
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], y_true[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps = np.cumsum(y)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    tpr = np.r_[0.0, tps / pos]
    fpr = np.r_[0.0, fps / neg]
    return fpr, tpr, np.r_[np.inf, s[last_of_tie]]


def auc(x, y) -> float:
    """Area under the piecewise-linear curve through ``(x, y)`` (trapezoids); ``x`` sorted."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


def roc_auc(y_true, scores) -> float:
    """Area under the ROC curve: the probability that a random positive outscores a
    random negative (ties count one half)."""
    fpr, tpr, _ = roc_curve(y_true, scores)
    return auc(fpr, tpr)


# ---------------------------------------------------------------- calibration


def calibration_bins(y_true, probs, n_bins: int = 15) -> dict:
    """Reliability table: top-label confidence against accuracy in equal-width bins.

    Confidence ``conf_i = max_c probs[i, c]``, correctness ``ok_i = [argmax_c probs[i, c] == y_i]``.
    Bin ``b`` holds the samples with ``conf`` in ``(b / B, (b + 1) / B]`` (bin 0 also
    takes ``conf = 0``). Returns ``edges (B+1,)``, ``count (B,)``, and per-bin mean
    ``confidence`` and ``accuracy`` (0 for an empty bin).
    """
    y_true = _labels(y_true, "y_true")
    probs = np.asarray(probs)
    conf = probs.max(axis=1)
    ok = probs.argmax(axis=1) == y_true
    b = np.clip(np.ceil(conf.astype(np.float64) * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    count = np.bincount(b, minlength=n_bins)
    return {
        "edges": np.linspace(0.0, 1.0, n_bins + 1),
        "count": count,
        "confidence": _div(np.bincount(b, weights=conf, minlength=n_bins), count),
        "accuracy": _div(np.bincount(b, weights=ok, minlength=n_bins), count),
    }


def expected_calibration_error(y_true, probs, n_bins: int = 15) -> float:
    """ECE ``= sum_b (|B_b| / n) * |accuracy(B_b) - confidence(B_b)|`` over the bins of
    :func:`calibration_bins` (Naeini et al. 2015; Guo et al. 2017 use 15 bins).

    0 means confidence matches accuracy in every bin; 0.0 for no samples.
    """
    t = calibration_bins(y_true, probs, n_bins)
    n = t["count"].sum()
    return float(t["count"] @ np.abs(t["accuracy"] - t["confidence"]) / n) if n else 0.0


__all__ = [
    "accuracy",
    "top_k_accuracy",
    "confusion_matrix",
    "most_confused",
    "precision_recall_f1",
    "example_log_loss",
    "log_loss",
    "roc_curve",
    "auc",
    "roc_auc",
    "calibration_bins",
    "expected_calibration_error",
]
