"""The Markdown evaluation report: tables, embedded pictures and plain-language insights.

:func:`write` takes the dict of :func:`fnn.evaluation.report.analyze` (plus ``about`` and
``seconds``) and the picture file names, and writes ``report.md``;
:func:`insights` is the bullet list on its own.
"""

from __future__ import annotations

from fnn import serialization

PICTURES = [  # (key, heading, one-line reading guide)
    ("training_curves", "Training curves", "Loss and accuracy per epoch, training against validation, with the learning rate."),
    ("confusion_matrix", "Confusion matrix", "Rows are true classes, columns predictions; colour is the share of the row."),
    ("per_class_accuracy", "Accuracy per class", "Recall of each class; the three hardest are red."),
    ("confused_pairs", "Most confused pairs", "The largest off-diagonal cells of the confusion matrix."),
    ("calibration", "Confidence and accuracy", "Accuracy of the predictions in each confidence bin; on the diagonal is calibrated."),
    ("misclassified", "Misclassified examples", "Wrong predictions, the most confident first."),
    ("highest_loss", "Highest-loss examples", "The examples the model finds least likely to be what they are."),
    ("sample_predictions", "Sample predictions", "The first examples of the split; green right, red wrong."),
    ("first_layer_weights", "First-layer weights", "Each first-layer unit's input weights as an image (red positive, blue negative)."),
    ("conv_filters", "First conv layer's filters", "Each filter of the first convolution as a kernel-sized tile (red positive, "
     "blue negative; colour filters as colours)."),
    ("feature_maps", "Feature maps", "The first example and what each channel of the first conv layer makes of it "
     "(bright: strong response, each map in its own range)."),
    ("overfitting", "Overfitting check", "Training against validation loss; a red line marks where validation loss began rising "
     "for 3 epochs while training loss fell."),
    ("gradient_norms", "Gradient norm per layer", "||dL/dW|| per layer (log scale; epoch 0 is the initialization) and the "
     "update-to-weight ratio per epoch. Early layers decades below the last one: vanishing gradients."),
    ("activation_histograms", "Activation histograms", "Each hidden layer's outputs on the probe at the first, middle and last "
     "epoch. Sigmoid/tanh piled at the ends: saturation; collapsed to one value: the layer passes nothing on."),
    ("dead_units", "Dead and saturated units", "Share of ReLUs never positive on the probe, and of sigmoid/tanh units "
     "stuck at an end, per epoch."),
    ("saliency", "Saliency", "dL/dx for the first test examples: red pixels raise the true class's loss when brightened, "
     "blue ones lower it."),
]


def pct(x, digits=2) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def table(header, rows, align=None) -> list[str]:
    """A Markdown table. ``align``: one letter per column, ``l`` or ``r`` (default: first left, others right)."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---" if a == "l" else "---:" for a in align]
    return ["| " + " | ".join(map(str, r)) + " |" for r in (header, rule, *rows)]


def insights(result) -> list[str]:
    """Bullet points: hardest classes, top confused pairs, confidence against errors, and the run's own figures."""
    per, conf, pairs = result["per_class"], result["confidence"], result["most_confused"]
    out = []
    present = [c for c in per if c["support"] > 0]
    hardest = sorted(present, key=lambda c: (c["recall"], c["class"]))[:3]
    if hardest:
        parts = []
        names, cm = result["classes"], result["confusion_matrix"]
        for c in hardest:
            row = cm[names.index(c["class"])]
            worst = sorted((-n, j) for j, n in enumerate(row) if n and names[j] != c["class"])[:2]
            taken = ", ".join(f"{names[j]} ({-n})" for n, j in worst)
            parts.append(f"**{c['class']}** ({pct(c['recall'], 1)} recall" + (f"; taken for {taken}" if taken else "") + ")")
        out.append("Hardest classes: " + "; ".join(parts) + ".")
    low_p = min(per, key=lambda c: (c["precision"], c["class"]))
    out.append(f"Least trustworthy prediction: **{low_p['class']}** is right {pct(low_p['precision'], 1)} of the times it is predicted.")
    if pairs:
        listed = ", ".join(f"{p['true']} → {p['pred']} ({p['count']}, {pct(p['share_of_true'], 1)} of {p['true']})" for p in pairs[:5])
        out.append(f"Top confused pairs (true → predicted): {listed}.")
        both = _symmetric(pairs)
        if both:
            a, b, n = both
            out.append(f"The pair confused most in both directions is {a} ↔ {b} ({n} mistakes in all).")
    else:
        out.append("No example is misclassified.")
    if conf["errors"]:
        out.append(
            f"Confidence: right predictions average {pct(conf['mean_correct'], 1)}, wrong ones "
            f"{pct(conf['mean_wrong'], 1)}. {conf['confident_errors']} of the {conf['errors']} mistakes "
            f"({pct(conf['confident_errors'] / conf['errors'], 1)}) were made with at least 90% confidence."
        )
    bands = [b for b in conf["bands"] if b["count"]]
    out.append("Accuracy by confidence: " + "; ".join(
        f"{b['low']:.0%}–{b['high']:.0%} confident, {pct(b['accuracy'], 1)} right ({b['count']} examples, {pct(b['share'], 1)})"
        for b in bands) + ".")
    gap = conf["mean"] - result["accuracy"]
    side = "overconfident" if gap > 0 else "underconfident"
    out.append(f"Calibration: mean confidence {pct(conf['mean'], 1)} against accuracy {pct(result['accuracy'], 1)} "
               f"({side} by {abs(gap) * 100:.2f} points); expected calibration error {result['ece']:.4f}.")
    about = result.get("about", {})
    if about.get("summary_test_accuracy") is not None and about.get("split") == "test":
        same = abs(about["summary_test_accuracy"] - result["accuracy"]) < 1e-12
        out.append(f"Training reported test accuracy {pct(about['summary_test_accuracy'])}; this evaluation "
                   + ("reproduces it exactly." if same else f"finds {pct(result['accuracy'])} (different data or preprocessing?)."))
    return out


def _symmetric(pairs):
    """The unordered pair with the most mistakes in both directions among ``pairs``, or None."""
    totals = {}
    for p in pairs:
        key = tuple(sorted((p["true"], p["pred"])))
        totals.setdefault(key, []).append(p["count"])
    both = [(a, b, sum(c)) for (a, b), c in totals.items() if len(c) == 2]
    return max(both, key=lambda t: t[2]) if both else None


def render(result, pictures: dict, title="Evaluation") -> str:
    """The report as Markdown text; ``pictures`` maps keys of :data:`PICTURES` to file names."""
    about = result.get("about", {})
    where = ", ".join(f"{k} `{v}`" for k, v in about.items() if k in ("model", "dataset", "split") and v)
    lines = [f"# {title}", "", f"{where + ', ' if where else ''}{result['n']} examples, "
             f"evaluated in {result['seconds']:.3f} s (forward pass and metrics).", ""]
    summary = [("accuracy", pct(result["accuracy"])),
               *[(f"top-{k} accuracy", pct(v)) for k, v in result["top_k_accuracy"].items()],
               ("loss (cross-entropy)", f"{result['loss']:.4f}"),
               ("macro F1", f"{result['macro']['f1']:.4f}"), ("weighted F1", f"{result['weighted']['f1']:.4f}"),
               ("expected calibration error", f"{result['ece']:.4f}"), ("errors", f"{result['confidence']['errors']} of {result['n']}")]
    lines += table(["metric", "value"], summary) + ["", "## Insights", ""]
    lines += [f"- {s}" for s in insights(result)] + ["", "## Per-class metrics", ""]
    rows = [(c["class"], f"{c['precision']:.4f}", f"{c['recall']:.4f}", f"{c['f1']:.4f}", c["support"]) for c in result["per_class"]]
    for avg in ("macro", "weighted"):
        a = result[avg]
        rows.append((f"*{avg} average*", f"{a['precision']:.4f}", f"{a['recall']:.4f}", f"{a['f1']:.4f}", result["n"]))
    lines += table(["class", "precision", "recall", "F1", "support"], rows)
    lines += ["", "Zero divisions count as 0: the precision of a class never predicted, the recall of a class that "
              "never occurs. Macro averages run over the classes that occur or are predicted.", ""]
    lines += ["## Confusion matrix (counts)", "", "Rows: true class; columns: predicted class.", ""]
    names = result["classes"]
    lines += table(["true \\ predicted", *names], [(n, *row) for n, row in zip(names, result["confusion_matrix"])])
    lines += diagnostics_section(result.get("diagnostics"))
    for key, heading, guide in PICTURES:
        if key in pictures:
            lines += ["", f"## {heading}", "", guide, "", f"![{heading}]({pictures[key]})"]
    return "\n".join(lines) + "\n"


def diagnostics_section(diag) -> list[str]:
    """The "Training diagnostics" section: the warnings fit gave and a table of the last epoch's layers."""
    if not diag:
        return []
    lines = ["", "## Training diagnostics", "",
             f"Measured by `fit --diagnostics` on a fixed probe of {diag['probe']} training examples; last epoch {diag['epoch']}.", ""]
    lines += [f"- warning: {w}" for w in diag["warnings"]] or ["- no warnings: no vanishing gradients, dead or saturated "
                                                               "layers, or overfitting were seen."]
    def num(v, fmt):
        return "n/a" if v is None else format(v, fmt)
    rows = [(f"{lay['layer']}: {lay['name']}", num(lay.get("act_mean"), ".3f"), num(lay.get("act_std"), ".3f"),
             pct(lay.get("dead"), 1), pct(lay.get("saturated"), 1), num(lay.get("grad_norm"), ".2e"),
             num(lay.get("update_ratio"), ".2e")) for lay in diag["layers"]]
    return lines + [""] + table(["layer", "mean", "std", "dead", "saturated", "grad norm", "update ratio"], rows)


def write(path, result, pictures: dict, title="Evaluation") -> None:
    """Write :func:`render`'s Markdown to ``path`` atomically."""
    text = render(result, pictures, title)
    serialization.atomic_write(path, lambda f: f.write(text.encode("utf-8")))


__all__ = ["PICTURES", "insights", "render", "write", "table", "pct", "diagnostics_section"]
