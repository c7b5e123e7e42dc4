"""fnn.metrics against hand-worked small cases and against plain-loop references."""

import math

import numpy as np
import pytest

from fnn import metrics

# A 3-class case worked out by hand:
#   true 0: predicted 0, 0, 1, 2   -> row [2, 1, 1]
#   true 1: predicted 1, 0         -> row [1, 1, 0]
#   true 2: predicted 2, 2, 1      -> row [0, 1, 2]
Y3 = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2])
P3 = np.array([0, 0, 1, 2, 1, 0, 2, 2, 1])
CM3 = np.array([[2, 1, 1], [1, 1, 0], [0, 1, 2]])

# Four classes: class 2 occurs twice but is never predicted; class 3 never occurs
# but is predicted once.
Y4 = np.array([0, 0, 1, 1, 2, 2])
P4 = np.array([0, 1, 1, 3, 0, 0])
CM4 = np.array([[1, 1, 0, 0], [0, 1, 0, 1], [2, 0, 0, 0], [0, 0, 0, 0]])


def loop_confusion(y_true, y_pred, k):
    cm = np.zeros((k, k), int)
    for t, p in zip(y_true, y_pred):
        cm[t, p] += 1
    return cm


def test_accuracy_hand_case():
    assert metrics.accuracy(Y3, P3) == pytest.approx(5 / 9)
    assert metrics.accuracy(Y4, P4) == pytest.approx(2 / 6)


def test_confusion_matrix_three_classes():
    np.testing.assert_array_equal(metrics.confusion_matrix(Y3, P3, 3), CM3)
    np.testing.assert_array_equal(metrics.confusion_matrix(Y3, P3), CM3)  # K inferred


def test_confusion_matrix_normalized():
    rows = np.array([[2 / 4, 1 / 4, 1 / 4], [1 / 2, 1 / 2, 0], [0, 1 / 3, 2 / 3]])
    cols = np.array([[2 / 3, 1 / 3, 1 / 3], [1 / 3, 1 / 3, 0], [0, 1 / 3, 2 / 3]])
    np.testing.assert_allclose(metrics.confusion_matrix(Y3, P3, 3, normalize="true"), rows)
    np.testing.assert_allclose(metrics.confusion_matrix(Y3, P3, 3, normalize="pred"), cols)
    np.testing.assert_allclose(metrics.confusion_matrix(Y3, P3, 3, normalize="all"), CM3 / 9)


def test_confusion_matrix_absent_classes_normalize_to_zero():
    np.testing.assert_array_equal(metrics.confusion_matrix(Y4, P4, 4), CM4)
    rows = metrics.confusion_matrix(Y4, P4, 4, normalize="true")
    cols = metrics.confusion_matrix(Y4, P4, 4, normalize="pred")
    np.testing.assert_array_equal(rows[3], [0, 0, 0, 0])  # class 3 never occurs
    np.testing.assert_array_equal(cols[:, 2], [0, 0, 0, 0])  # class 2 never predicted
    np.testing.assert_allclose(rows[2], [1, 0, 0, 0])
    np.testing.assert_allclose(cols[:, 0], [1 / 3, 0, 2 / 3, 0])
    assert np.isfinite(rows).all() and np.isfinite(cols).all()


def test_confusion_matrix_matches_loop_on_random_labels():
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 7, 500), rng.integers(0, 7, 500)
    np.testing.assert_array_equal(metrics.confusion_matrix(y, p, 7), loop_confusion(y, p, 7))


@pytest.mark.parametrize("bad", [{"y_pred": np.array([0, 3])}, {"normalize": "rows"}])
def test_confusion_matrix_rejects_bad_input(bad):
    args = {"y_true": np.array([0, 1]), "y_pred": np.array([0, 1]), "num_classes": 3} | bad
    with pytest.raises(ValueError):
        metrics.confusion_matrix(**args)


def test_precision_recall_f1_three_classes():
    r = metrics.precision_recall_f1(Y3, P3, 3)
    np.testing.assert_allclose(r["precision"], [2 / 3, 1 / 3, 2 / 3])
    np.testing.assert_allclose(r["recall"], [1 / 2, 1 / 2, 2 / 3])
    np.testing.assert_allclose(r["f1"], [4 / 7, 2 / 5, 2 / 3])
    np.testing.assert_array_equal(r["support"], [4, 2, 3])
    assert r["macro"]["precision"] == pytest.approx(5 / 9)
    assert r["macro"]["recall"] == pytest.approx(5 / 9)
    assert r["macro"]["f1"] == pytest.approx(172 / 315)
    assert r["weighted"]["precision"] == pytest.approx(16 / 27)
    assert r["weighted"]["recall"] == pytest.approx(5 / 9)  # weighted recall is accuracy
    assert r["weighted"]["f1"] == pytest.approx(178 / 315)


def test_precision_recall_f1_never_predicted_and_never_occurring():
    r = metrics.precision_recall_f1(Y4, P4, 4)
    np.testing.assert_allclose(r["precision"], [1 / 3, 1 / 2, 0, 0])  # class 2: never predicted -> 0
    np.testing.assert_allclose(r["recall"], [1 / 2, 1 / 2, 0, 0])  # class 3: never occurs -> 0
    np.testing.assert_allclose(r["f1"], [2 / 5, 1 / 2, 0, 0])
    np.testing.assert_array_equal(r["support"], [2, 2, 2, 0])
    assert r["macro"] == pytest.approx({"precision": 5 / 24, "recall": 1 / 4, "f1": 9 / 40})
    assert r["weighted"] == pytest.approx({"precision": 5 / 18, "recall": 1 / 3, "f1": 3 / 10})


def test_macro_average_skips_a_class_in_neither_labels_nor_predictions():
    four, five = metrics.precision_recall_f1(Y4, P4, 4), metrics.precision_recall_f1(Y4, P4, 5)
    assert five["precision"][4] == 0 and five["support"][4] == 0
    assert five["macro"] == pytest.approx(four["macro"])


def test_precision_recall_f1_matches_loop_on_random_labels():
    rng = np.random.default_rng(1)
    y, p = rng.integers(0, 5, 300), rng.integers(0, 4, 300)  # class 4 never predicted
    r = metrics.precision_recall_f1(y, p, 5)
    for c in range(5):
        tp = sum(1 for t, q in zip(y, p) if t == c and q == c)
        npred, nsup = sum(1 for q in p if q == c), sum(1 for t in y if t == c)
        prec = tp / npred if npred else 0.0
        rec = tp / nsup if nsup else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        assert (r["precision"][c], r["recall"][c], r["f1"][c]) == pytest.approx((prec, rec, f1))


def test_top_k_accuracy_hand_case():
    scores = np.array([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1], [0.2, 0.3, 0.5], [0.3, 0.3, 0.4]])
    y = np.array([2, 0, 0, 1])
    assert metrics.top_k_accuracy(y, scores, 1) == pytest.approx(1 / 4)
    assert metrics.top_k_accuracy(y, scores, 2) == pytest.approx(3 / 4)  # the 0.3/0.3 tie counts as a hit
    assert metrics.top_k_accuracy(y, scores, 3) == 1.0


def test_log_loss_hand_case_and_clipping():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]], np.float32)
    y = np.array([0, 1, 0])
    want = -(math.log(0.7) + math.log(0.8) + math.log(0.3)) / 3
    assert metrics.log_loss(y, probs) == pytest.approx(want, rel=1e-6)
    zero = np.array([[1.0, 0.0]], np.float32)
    assert metrics.log_loss(np.array([1]), zero) == pytest.approx(-math.log(1e-7), rel=1e-6)
    np.testing.assert_allclose(metrics.example_log_loss(y, probs), [-math.log(0.7), -math.log(0.8), -math.log(0.3)], rtol=1e-6)


def test_roc_curve_hand_case():
    fpr, tpr, thr = metrics.roc_curve(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(thr, [np.inf, 0.8, 0.4, 0.35, 0.1])
    assert metrics.auc(fpr, tpr) == pytest.approx(0.75)


def test_roc_ties_move_diagonally():
    y, s = np.array([0, 1, 1, 0]), np.array([0.5, 0.5, 0.9, 0.2])
    fpr, tpr, _ = metrics.roc_curve(y, s)
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 1, 1])
    assert metrics.roc_auc(y, s) == pytest.approx(3.5 / 4)


def test_roc_auc_equals_pairwise_ranking_probability():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.normal(size=200) + y, 1)  # rounding makes ties
    pos, neg = s[y == 1], s[y == 0]
    wins = sum((a > b) + 0.5 * (a == b) for a in pos for b in neg)
    assert metrics.roc_auc(y, s) == pytest.approx(wins / (len(pos) * len(neg)))


def test_roc_needs_both_classes():
    with pytest.raises(ValueError, match="both classes"):
        metrics.roc_curve(np.array([1, 1]), np.array([0.2, 0.3]))


def test_expected_calibration_error_hand_case():
    probs = np.array([[0.9, 0.1], [0.75, 0.25], [0.55, 0.45], [0.3, 0.7]])
    y = np.array([0, 1, 0, 1])
    # bins of width 0.2: {0.9 right} | {0.75 wrong, 0.7 right} | {0.55 right}
    # ECE = (1 * |1 - 0.9| + 2 * |0.5 - 0.725| + 1 * |1 - 0.55|) / 4 = 0.25
    assert metrics.expected_calibration_error(y, probs, n_bins=5) == pytest.approx(0.25)
    t = metrics.calibration_bins(y, probs, n_bins=5)
    np.testing.assert_array_equal(t["count"], [0, 0, 1, 2, 1])
    np.testing.assert_allclose(t["accuracy"], [0, 0, 1, 0.5, 1])
    np.testing.assert_allclose(t["confidence"], [0, 0, 0.55, 0.725, 0.9])


def test_perfectly_calibrated_predictions_have_zero_ece():
    probs = np.tile([[0.75, 0.25]], (4, 1))
    assert metrics.expected_calibration_error(np.array([0, 0, 0, 1]), probs, n_bins=10) == pytest.approx(0.0)


def test_most_confused_lists_only_off_diagonal_mistakes():
    cm = np.array([[5, 2, 0], [0, 4, 3], [1, 0, 6]])
    assert metrics.most_confused(cm, 10) == [(1, 2, 3), (0, 1, 2), (2, 0, 1)]
    assert metrics.most_confused(np.diag([3, 4]), 5) == []

