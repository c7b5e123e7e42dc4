"""Pictures of a model and its training, each written to a PNG file.

Matplotlib is imported inside the functions, never at module import, and only
its object API is used: each figure is a ``matplotlib.figure.Figure`` drawn by
the Agg canvas, so nothing touches pyplot's global state or the display (safe
in a web server or a test run). Every function takes the output ``path`` and
returns it as a :class:`~pathlib.Path`.

Shapes: ``images`` are ``(n, 28, 28)`` or ``(n, 784)`` (uint8 or floats, any
range; each tile is scaled on its own), ``y_true`` is ``(n,)`` integer labels,
``probs`` is ``(n, classes)`` predicted probabilities, ``cm`` is a
``(classes, classes)`` count matrix (rows: true class, columns: prediction),
``classes`` are the class names (``None`` means ``"0"``, ``"1"``, ...).
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import numpy as np

from fnn import metrics

DPI = 110
RIGHT, WRONG = "#1a7f37", "#c62828"  # caption colours for right and wrong predictions
TRAIN, VAL = "#1f77b4", "#ff7f0e"
STYLE = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "figure.titlesize": 13,
    "figure.titleweight": "bold",
}


# ---------------------------------------------------------------- helpers


@contextlib.contextmanager
def _figure(width, height, path, layout="constrained"):
    """Yield an Agg figure of ``width x height`` inches; save it to ``path`` on exit."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width, height), dpi=DPI, layout=layout)
        FigureCanvasAgg(fig)
        yield fig
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        from fnn.serialization import atomic_write

        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=DPI, facecolor="white"))  # never half a PNG


def _names(classes, k):
    return [str(c) for c in classes] if classes is not None else [str(i) for i in range(k)]


def _column(history, key):
    """``(epochs, values)`` for the rows of ``history`` that have a number under ``key``."""
    rows = [(r["epoch"] if type(r.get("epoch")) is int else i + 1, r[key])  # a record without its epoch: its position
            for i, r in enumerate(history) if isinstance(r.get(key), (int, float)) and not isinstance(r[key], bool)]
    return [e for e, _ in rows], [v for _, v in rows]


def _line(ax, history, key, label, color, style="-"):
    x, y = _column(history, key)
    if y:
        ax.plot(x, y, style, color=color, label=label, marker="o" if len(y) <= 30 else None, markersize=3.5)
    return y


def _as_tiles(images, image_shape=None):
    images = np.asarray(images)
    if images.ndim == 2:
        side = image_shape or (int(math.isqrt(images.shape[1])),) * 2
        images = images.reshape((len(images),) + tuple(side))
    return images


# ---------------------------------------------------------------- training


def training_curves(history, path, title="Training curves"):
    """Loss and accuracy per epoch, train against validation, and the learning rate.

    ``history``: a list of per-epoch dicts as in ``metrics.jsonl`` (keys ``epoch``,
    ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``, ``lr``; missing keys are
    skipped). The best validation accuracy is marked.
    """
    has_lr = bool(_column(history, "lr")[1])
    with _figure(13 if has_lr else 9.5, 4, path) as fig:
        axes = fig.subplots(1, 3 if has_lr else 2)
        for ax, key, name in ((axes[0], "loss", "Loss"), (axes[1], "accuracy", "Accuracy")):
            _line(ax, history, key, "train", TRAIN)
            val = _line(ax, history, "val_" + key, "validation", VAL)
            if key == "accuracy" and val:
                x, _ = _column(history, "val_accuracy")
                best = int(np.argmax(val))
                ax.plot(x[best], val[best], "*", color=VAL, markersize=13, zorder=5)
                ax.annotate(f"best {val[best]:.2%}\nepoch {x[best]}", (x[best], val[best]), xytext=(0, -30),
                            textcoords="offset points", ha="center", va="top", fontsize=9, color="#444")
            ax.set(title=name, xlabel="epoch", ylabel=name.lower())
            if ax.get_legend_handles_labels()[0]:  # a damaged metrics.jsonl may hold no figure to draw
                ax.legend()
        if has_lr:
            x, lr = _column(history, "lr")
            axes[2].plot(x, lr, color="#6a3d9a", marker="o" if len(lr) <= 30 else None, markersize=3.5)
            if min(lr) > 0 and max(lr) / min(lr) > 10:
                axes[2].set_yscale("log")
            axes[2].set(title="Learning rate", xlabel="epoch", ylabel="learning rate")
        for ax in axes:
            ax.xaxis.get_major_locator().set_params(integer=True)
        fig.suptitle(title)
    return Path(path)


# ---------------------------------------------------------------- confusion


def confusion_matrix(cm, classes, path, title="Confusion matrix"):
    """Heatmap of ``cm`` coloured by row share (recall), each cell labelled with its count."""
    cm = np.asarray(cm)
    k = len(cm)
    names = _names(classes, k)
    share = metrics._div(cm, cm.sum(axis=1, keepdims=True))
    size = max(5.5, 0.62 * k + 2.8)
    with _figure(size + 1.2, size, path) as fig:
        ax = fig.subplots()
        im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        ax.grid(False)
        fontsize = 9 if k <= 12 else max(5, 9 - (k - 12) // 3)
        for (i, j), n in np.ndenumerate(cm):
            if n == 0:
                continue
            ax.text(j, i, str(n), ha="center", va="center", fontsize=fontsize,
                    color="white" if share[i, j] > 0.55 else "#222", fontweight="bold" if i == j else None)
        if max(map(len, names), default=0) > 3:
            ax.set_xticks(range(k), names, rotation=40, ha="right", rotation_mode="anchor")
        else:
            ax.set_xticks(range(k), names)
        ax.set_yticks(range(k), names)
        ax.set(xlabel="predicted class", ylabel="true class", title=title)
        ax.spines[:].set_visible(False)
        cb = fig.colorbar(im, ax=ax, shrink=0.8)
        cb.set_label("share of the true class (row)")
    return Path(path)


def per_class_accuracy(recall, classes, path, support=None, overall=None, title="Accuracy per class"):
    """Horizontal bars of per-class accuracy (recall), the value printed on each bar.

    ``support`` (counts per class) is added to the labels; ``overall`` draws a dashed line.
    """
    recall = np.asarray(recall, float)
    k = len(recall)
    names = _names(classes, k)
    if support is not None:
        names = [f"{n}  (n={int(s)})" for n, s in zip(names, support)]
    lo = max(0.0, math.floor((recall.min() - 0.03) * 20) / 20) if k else 0.0
    with _figure(8, max(3.0, 0.42 * k + 1.3), path) as fig:
        ax = fig.subplots()
        worst = np.argsort(recall)[: min(3, k)]
        colors = [WRONG if i in worst else TRAIN for i in range(k)]
        ax.barh(range(k), recall - lo, left=lo, color=colors, height=0.7)
        for i, r in enumerate(recall):
            ax.text(r, i, f" {r:.1%}", va="center", fontsize=9,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.8})
        if overall is not None:
            ax.axvline(overall, color="#444", linestyle="--", linewidth=1)
            ax.text(overall, -0.75, f"overall {overall:.1%}", ha="center", va="bottom", fontsize=9, color="#444",
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
        ax.set_yticks(range(k), names)
        ax.invert_yaxis()
        ax.set_xlim(lo, 1.0 + (1.0 - lo) * 0.12)
        ax.set_ylim(k - 0.5, -1.3)
        ax.set(xlabel="accuracy (recall)" + (f", axis from {lo:.0%}" if lo > 0 else ""), title=title)
        ax.grid(axis="y", visible=False)
    return Path(path)


def confused_pairs(cm, classes, path, top=10, title="Most confused class pairs"):
    """Horizontal bars of the ``top`` largest off-diagonal counts, labelled ``true → predicted``."""
    cm = np.asarray(cm)
    names = _names(classes, len(cm))
    pairs = metrics.most_confused(cm, top)
    support = cm.sum(axis=1)
    with _figure(8, max(2.5, 0.42 * len(pairs) + 1.3), path) as fig:
        ax = fig.subplots()
        if not pairs:
            ax.text(0.5, 0.5, "no mistakes: every example is on the diagonal", ha="center", va="center",
                    transform=ax.transAxes, fontsize=14)
            ax.set_axis_off()
        else:
            counts = [n for _, _, n in pairs]
            ax.barh(range(len(pairs)), counts, color=WRONG, height=0.7)
            for r, (i, _j, n) in enumerate(pairs):
                ax.text(n, r, f" {n}  ({n / support[i]:.1%} of {names[i]})", va="center", fontsize=9)
            ax.set_yticks(range(len(pairs)), [f"{names[i]} → {names[j]}" for i, j, _ in pairs])
            ax.invert_yaxis()
            ax.set_xlim(0, max(counts) * 1.55)
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.set(xlabel="test examples (true → predicted)", title=title)
            ax.grid(axis="y", visible=False)
    return Path(path)


def reliability_diagram(table, path, title="Confidence against accuracy"):
    """Calibration: accuracy per confidence bin against the diagonal, and how many samples each bin holds.

    ``table`` is :func:`fnn.metrics.calibration_bins`'s output.
    """
    edges, count = np.asarray(table["edges"]), np.asarray(table["count"])
    acc, conf = np.asarray(table["accuracy"]), np.asarray(table["confidence"])
    mid, width = (edges[1:] + edges[:-1]) / 2, np.diff(edges) * 0.9
    full = count > 0
    with _figure(9.5, 4, path) as fig:
        ax, hx = fig.subplots(1, 2)
        ax.plot([0, 1], [0, 1], "--", color="#888", label="perfect calibration")
        ax.bar(mid[full], acc[full], width=width[full], color=TRAIN, alpha=0.85, label="accuracy in bin")
        low, gap = np.minimum(acc, conf)[full], np.abs(conf - acc)[full]
        ax.bar(mid[full], gap, bottom=low, width=width[full], color=WRONG, alpha=0.35, hatch="//",
               edgecolor=WRONG, linewidth=0, label="gap to mean confidence")
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (top probability)", ylabel="accuracy", title=title)
        ax.legend(loc="upper left")
        hx.bar(mid[full], count[full], width=width[full], color="#888")
        if full.any():
            hx.set_yscale("log")
        hx.set(xlim=(0, 1), xlabel="confidence (top probability)", ylabel="examples (log scale)", title="Examples per bin")
    return Path(path)


# ---------------------------------------------------------------- example grids


def _mosaic(tiles, cols, gap, top=0, fill=0.0):
    """Tiles ``(n, h, w)`` laid out in one array, ``cols`` per row, ``gap`` pixels apart,
    with ``top`` empty rows above each tile (room for a caption). Returns the array and
    the top-left corner ``(y, x)`` of every tile."""
    n, h, w = tiles.shape
    rows = max(1, math.ceil(n / cols))
    ch, cw = h + gap + top, w + gap
    out = np.full((rows * ch, cols * cw), fill, np.float32)
    corners = []
    for i, tile in enumerate(tiles):
        y, x = (i // cols) * ch + top + gap // 2, (i % cols) * cw + gap // 2
        out[y : y + h, x : x + w] = tile
        corners.append((y, x))
    return out, corners


TITLE_STRIP = 0.5  # inches above a mosaic for its title


@contextlib.contextmanager
def _mosaic_axes(mosaic, inches_per_px, title, path):
    """Yield one borderless axes exactly the mosaic's size (at ``inches_per_px``) under a title strip."""
    height, width = (d * inches_per_px for d in mosaic.shape)
    total = height + TITLE_STRIP
    with _figure(width, total, path, layout=None) as fig:
        ax = fig.add_axes((0, 0, 1, height / total))
        ax.set_axis_off()
        fig.suptitle(title, y=1 - 0.1 / total, va="top")
        yield ax


def _image_grid(images, captions, colors, path, title, cols=8, image_shape=None):
    """Images in one mosaic (each scaled to its own range), each with a two-line caption in its colour.

    One axes for the whole grid: about ten times faster to draw than a subplot per image.
    """
    images = _as_tiles(images, image_shape).astype(np.float32)
    n = len(images)
    cols = max(1, min(cols, n))
    lo = images.min(axis=(1, 2), keepdims=True) if n else 0
    span = images.max(axis=(1, 2), keepdims=True) - lo if n else 1
    tiles = (images - lo) / np.where(span > 0, span, 1)
    h, w = images.shape[1:3] if n else (28, 28)
    gap, top = w * 2 // 7, h * 3 // 7
    mosaic, corners = _mosaic(tiles, cols, gap, top) if n else (np.zeros((h + top + gap, 8 * (w + gap))), [])
    with _mosaic_axes(mosaic, 1.45 / (w + gap), title, path) as ax:
        ax.imshow(mosaic, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        for (y, x), cap, col in zip(corners, captions, colors):
            ax.text(x + w / 2, y - 1, cap, ha="center", va="bottom", fontsize=8, color=col, linespacing=1.15)
        if not n:
            ax.text(mosaic.shape[1] / 2, mosaic.shape[0] / 2, "nothing to show", ha="center", va="center", fontsize=12)
    return Path(path)


def _predictions(y_true, probs):
    probs = np.asarray(probs)
    pred = probs.argmax(axis=1)
    return np.asarray(y_true), pred, probs[np.arange(len(pred)), pred]


def _pct(p):
    """A probability as a short percentage that never rounds to a misleading 0% or 100%."""
    return ">99.9%" if p > 0.999 else "<0.1%" if p < 0.001 else f"{p:.0%}" if 0.01 <= p <= 0.99 else f"{p:.1%}"


def _short(name, width=12):
    return name if len(name) <= width else name[: width - 1] + "…"


def sample_predictions(images, y_true, probs, classes, path, n=32, title="Sample predictions"):
    """The first ``n`` examples with true label, prediction and its probability (green right, red wrong)."""
    y, pred, conf = _predictions(y_true[:n], probs[:n])
    names = [_short(c) for c in _names(classes, np.shape(probs)[1])]
    caps = [f"true {names[t]}\npred {names[p]} {_pct(c)}" for t, p, c in zip(y, pred, conf)]
    return _image_grid(images[:n], caps, [RIGHT if t == p else WRONG for t, p in zip(y, pred)], path, title)


def misclassified_examples(images, y_true, probs, classes, path, n=32, title="Misclassified examples"):
    """Up to ``n`` wrongly predicted examples, most confident mistakes first."""
    y, pred, conf = _predictions(y_true, probs)
    wrong = np.flatnonzero(pred != y)
    idx = wrong[np.argsort(-conf[wrong], kind="stable")][:n]
    names = [_short(c) for c in _names(classes, np.shape(probs)[1])]
    caps = [f"true {names[y[i]]}\npred {names[pred[i]]} {_pct(conf[i])}" for i in idx]
    title = f"{title}: {len(idx)} of {len(wrong)}, most confident first" if len(wrong) else f"{title}: none"
    return _image_grid(np.asarray(images)[idx], caps, [WRONG] * len(idx), path, title)


def highest_loss_examples(images, y_true, probs, classes, path, n=32,
                          title="Highest-loss examples (% = probability given to the true class)"):
    """The ``n`` examples with the largest loss ``-log p(true class)``, with that probability."""
    y, pred, conf = _predictions(y_true, probs)
    loss = metrics.example_log_loss(y, probs)
    idx = np.argsort(-loss, kind="stable")[:n]
    p_true = np.asarray(probs)[idx, y[idx]]
    names = [_short(c) for c in _names(classes, np.shape(probs)[1])]
    caps = [f"true {names[y[i]]} {_pct(pt)}\npred {names[pred[i]]} · loss {loss[i]:.1f}" for i, pt in zip(idx, p_true)]
    colors = [RIGHT if y[i] == pred[i] else WRONG for i in idx]
    return _image_grid(np.asarray(images)[idx], caps, colors, path, title)


def first_layer_weights(w, path, image_shape=(28, 28), max_tiles=64, title="First-layer weights"):
    """Each first-layer unit's incoming weights ``w[:, u]`` (``w: (pixels, units)``) as an image tile.

    Blue is negative, red positive; each tile has its own symmetric colour range.
    """
    w = np.asarray(w)
    units = min(w.shape[1], max_tiles)
    cols = min(units, 8 if units <= 32 else 10)
    tiles = w[:, :units].T.reshape((units,) + tuple(image_shape))
    tiles = tiles / np.maximum(np.abs(tiles).max(axis=(1, 2), keepdims=True), 1e-12)  # each in [-1, 1]
    mosaic, _ = _mosaic(tiles, cols, gap=image_shape[1] // 7, fill=np.nan)
    from matplotlib import colormaps

    cmap = colormaps["RdBu_r"].with_extremes(bad="white")
    with _mosaic_axes(mosaic, 1.05 / (image_shape[1] * 8 // 7), f"{title}: {units} of {w.shape[1]} units", path) as ax:
        ax.imshow(mosaic, cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
    return Path(path)


def conv_filters(w, path, max_tiles=64, title="First conv layer's filters"):
    """Each filter of a convolution ``w: (kh, kw, c, filters)`` as a ``kh x kw`` tile.

    One input channel: blue is negative, red positive, each tile in its own symmetric range. Three (RGB):
    each filter as a colour image, scaled to its own range. Otherwise the mean over the input channels.
    """
    w = np.asarray(w, np.float32)
    kh, kw, c, f = w.shape
    n = min(f, max_tiles)
    cols = min(n, 8 if n <= 32 else 16)
    tiles = np.moveaxis(w[..., :n], -1, 0)  # (n, kh, kw, c)
    gap = max(1, kw // 3)
    inches = 0.55 / kw  # a tile about half an inch wide
    label = f"{title}: {n} of {f}, {kh}x{kw}" + (f" over {c} channels" if c > 1 else "")
    if c == 3:
        lo = tiles.min(axis=(1, 2, 3), keepdims=True)
        span = tiles.max(axis=(1, 2, 3), keepdims=True) - lo
        rgb = (tiles - lo) / np.where(span > 0, span, 1)
        planes = [_mosaic(rgb[..., i], cols, gap, fill=1.0)[0] for i in range(3)]
        with _mosaic_axes(planes[0], inches, label, path) as ax:
            ax.imshow(np.stack(planes, -1), interpolation="nearest")
        return Path(path)
    tiles = tiles[..., 0] if c == 1 else tiles.mean(axis=-1)
    tiles = tiles / np.maximum(np.abs(tiles).max(axis=(1, 2), keepdims=True), 1e-12)  # each in [-1, 1]
    mosaic, _ = _mosaic(tiles, cols, gap, fill=np.nan)
    from matplotlib import colormaps

    cmap = colormaps["RdBu_r"].with_extremes(bad="white")
    with _mosaic_axes(mosaic, inches, label, path) as ax:
        ax.imshow(mosaic, cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
    return Path(path)


def feature_maps(image, maps, path, max_maps=32, title="Feature maps of the first conv layer"):
    """One example ``image`` (``(h, w)`` or ``(h, w, 3)``) first, then its feature maps ``maps: (oh, ow, channels)``.

    Each map is scaled to its own range (dark: low, bright: high; a map that is constant shows flat).
    """
    maps = np.asarray(maps, np.float32)
    oh, ow, k = maps.shape
    n = min(k, max_maps)
    tiles = np.moveaxis(maps[..., :n], -1, 0)
    lo = tiles.min(axis=(1, 2), keepdims=True)
    span = tiles.max(axis=(1, 2), keepdims=True) - lo
    tiles = (tiles - lo) / np.where(span > 0, span, 1)
    cols = min(n, 8)
    mosaic, _ = _mosaic(tiles, cols, gap=max(1, ow // 7), fill=np.nan)
    from matplotlib import colormaps

    cmap = colormaps["viridis"].with_extremes(bad="white")
    image = np.asarray(image, np.float32)
    side = 1.1 / (ow + max(1, ow // 7))  # inches per pixel: a map about an inch wide
    mh, mw = (d * side for d in mosaic.shape)
    left, box, caption = 1.4, 1.0, 0.25  # inches: the input's column, its picture, its caption
    width, height = left + mw, max(mh, box + caption) + TITLE_STRIP + 0.1
    with _figure(width, height, path, layout=None) as fig:
        ax_in = fig.add_axes((0.2 / width, (height - TITLE_STRIP - caption - box) / height, box / width, box / height))
        ax_in.set_axis_off()
        ax_in.imshow(image, cmap="gray_r" if image.ndim == 2 else None, interpolation="nearest")
        ax_in.set_title("input", fontsize=9, fontweight="normal")
        ax = fig.add_axes((left / width, (height - TITLE_STRIP - mh) / height, mw / width, mh / height))
        ax.set_axis_off()
        ax.imshow(mosaic, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
        fig.suptitle(f"{title}: {n} of {k} channels, {oh}x{ow}", y=1 - 0.1 / height, va="top", fontsize=11)
    return Path(path)


# ---------------------------------------------------------------- comparing runs


def compare_curves(histories, path, title="Validation curves"):
    """Validation accuracy and loss per epoch of several runs, overlaid.

    ``histories``: ``{run_name: [per-epoch dict, ...]}`` (``val_*`` keys, or the
    training ``loss``/``accuracy`` when a run has no validation).
    """
    many = len(histories) > 6  # a legend that would cover the curves goes beside them
    cols = 1 if len(histories) <= 14 else 2
    with _figure(12 + (2.6 * cols if many else 0), 4.4 if len(histories) <= 14 else 5.2, path) as fig:
        axes = fig.subplots(1, 2)
        colors = _palette(len(histories))
        for (name, hist), color in zip(histories.items(), colors):
            for ax, key in zip(axes, ("accuracy", "loss")):
                if not _line(ax, hist, "val_" + key, name, color):
                    _line(ax, hist, key, f"{name} (train)", color, "--")
        for ax, key in zip(axes, ("accuracy", "loss")):
            ax.set(title=f"Validation {key}", xlabel="epoch", ylabel=key)
            ax.xaxis.get_major_locator().set_params(integer=True)
        if many:
            fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right center", ncols=cols, fontsize=8)
        else:
            axes[0].legend(loc="lower right")
        fig.suptitle(title)
    return Path(path)


def compare_scatter(rows, path, title="Test accuracy against size and time"):
    """Test accuracy against parameter count and against training seconds, each point labelled.

    ``rows``: dicts with ``name``, ``test_accuracy``, ``params``, ``train_seconds``
    (None where unknown). The parameter axis is logarithmic when counts span more than 20x.
    """
    from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

    colors = _palette(len(rows))
    with _figure(12, 4.6, path) as fig:
        axes = fig.subplots(1, 2)
        for ax, key, label in ((axes[0], "params", "parameters"), (axes[1], "train_seconds", "training time (s)")):
            xs = []
            for r, color in zip(rows, colors):
                if r.get(key) is None or r.get("test_accuracy") is None:
                    continue
                xs.append(r[key])
                ax.scatter(r[key], r["test_accuracy"], s=60, color=color, label=r["name"], zorder=3)
                if len(rows) <= 8:  # beyond that the labels pile up; the legend names the points
                    ax.annotate(f"{r['test_accuracy']:.2%}", (r[key], r["test_accuracy"]), xytext=(7, 5),
                                textcoords="offset points", fontsize=9, color="#333")
            ax.set(xlabel=label, ylabel="test accuracy", title=f"Test accuracy vs {label.split(' (')[0]}")
            ax.margins(x=0.18, y=0.3)
            ax.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 5, 10]))
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
            if key == "params" and xs and min(xs) > 0 and max(xs) / min(xs) > 20:
                ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FuncFormatter(_count_label) if key == "params" else FuncFormatter(lambda v, _: f"{v:g}"))
        handles, labels = axes[0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(handles)))
        fig.suptitle(title)
    return Path(path)


# ---------------------------------------------------------------- training diagnostics
# ``rows``: the per-epoch dicts of ``diagnostics.jsonl`` (see :mod:`fnn.training.diagnostics`).


def _layer_series(rows, key):
    """``{layer label: (epochs, values)}`` for the numbers under ``key`` of each layer."""
    series = {}
    for row in rows:
        for lay in row["layers"]:
            v = lay.get(key)
            if isinstance(v, (int, float)):
                xs, ys = series.setdefault(f"{lay['layer']}: {lay['name']}", ([], []))
                xs.append(row["epoch"])
                ys.append(v)
    return series


def _layer_lines(ax, series, log=True):
    colors = _palette(len(series))
    for (label, (xs, ys)), color in zip(series.items(), colors):
        ys = np.asarray(ys, float)
        ax.plot(xs, np.where(ys > 0, ys, np.nan) if log else ys, "-o", color=color, label=label, markersize=3.5)
    if log and series:
        ax.set_yscale("log")
    ax.xaxis.get_major_locator().set_params(integer=True)


def gradient_norms(rows, path, title="Gradient norm and update size per layer"):
    """Left: ``||dL/dW||`` per layer over epochs (log scale; epoch 0 is the initialization).
    Right: the update ratio ``||W_end - W_start|| / ||W_start||`` per layer and epoch, with the
    rule-of-thumb 1e-3 marked. Layers whose lines sit decades below the others learn slowly."""
    with _figure(13, 4.6, path) as fig:
        axes = fig.subplots(1, 2)
        _layer_lines(axes[0], _layer_series(rows, "grad_norm"))
        axes[0].set(title="Gradient norm (log scale)", xlabel="epoch (0 = initialization)", ylabel="||dL/dW||")
        ratios = _layer_series(rows, "update_ratio")
        _layer_lines(axes[1], ratios)
        axes[1].axhline(1e-3, color="#888", linestyle="--", linewidth=1)
        axes[1].annotate("1e-3", (1, 1e-3), xycoords=("axes fraction", "data"), ha="right", va="bottom", fontsize=8, color="#666")
        axes[1].set(title="Update / weight norm per epoch (log scale)", xlabel="epoch", ylabel="||ΔW|| / ||W||")
        if not ratios:
            axes[1].text(0.5, 0.5, "no finished epoch\n(or weights that start at zero)", ha="center", va="center",
                         transform=axes[1].transAxes, color="#666")
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right center", fontsize=8)
        fig.suptitle(title)
    return Path(path)


def activation_histograms(rows, path, epochs=None, title="Activations per layer"):
    """One panel per hidden layer: the distribution of its outputs on the probe at ``epochs``
    (default: the first, middle and last rows). ReLU panels use a log count axis (the zeros
    would dwarf the rest); a sigmoid or tanh layer piled up at its ends is saturated."""
    by_epoch = {r["epoch"]: r for r in rows}
    if epochs is None:
        keys = sorted(by_epoch)
        epochs = sorted({keys[0], keys[len(keys) // 2], keys[-1]}) if keys else []
    chosen = [by_epoch[e] for e in epochs if e in by_epoch]
    hidden = [i for i, lay in enumerate(rows[0]["layers"]) if lay.get("activation")] if rows else []
    n = max(1, len(hidden))
    cols = min(n, 5)
    nrows = math.ceil(n / cols)
    import matplotlib

    cmap = matplotlib.colormaps["plasma"]
    with _figure(2.9 * cols + 0.5, 2.5 * nrows + 0.9, path) as fig:
        axes = np.atleast_1d(fig.subplots(nrows, cols, squeeze=False)).ravel()
        for ax, i in zip(axes, hidden):
            lay = rows[0]["layers"][i]
            for k, row in enumerate(chosen):
                h = row["layers"][i]["hist"]
                counts = np.asarray(h["counts"], float)
                edges = np.linspace(h["lo"], h["hi"], len(counts) + 1)
                color = cmap(0.85 * k / max(1, len(chosen) - 1))
                ax.stairs(counts / max(counts.sum(), 1), edges, color=color, linewidth=1.6, label=f"epoch {row['epoch']}")
            if lay["activation"] == "relu":
                ax.set_yscale("log")
            ax.set_title(f"layer {lay['layer']} ({lay['activation']})", fontsize=10)
            ax.set_xlabel("output value", fontsize=9)
            ax.tick_params(labelsize=8)
        for ax in axes[len(hidden):]:
            ax.set_axis_off()
        if not hidden:
            axes[0].text(0.5, 0.5, "no hidden activation layers", ha="center", va="center", transform=axes[0].transAxes)
        axes[0].set_ylabel("share of outputs")
        if chosen and hidden:
            fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=len(chosen))
        fig.suptitle(title)
    return Path(path)


def dead_units(rows, path, title="Dead and saturated units per layer"):
    """Share of dead ReLUs (never positive on the probe) and of saturated sigmoid/tanh units, per layer and epoch."""
    from matplotlib.ticker import PercentFormatter

    with _figure(9, 4.4, path) as fig:
        ax = fig.subplots()
        dead, sat = _layer_series(rows, "dead"), _layer_series(rows, "saturated")
        _layer_lines(ax, {**{f"{k} dead": v for k, v in dead.items()}, **{f"{k} saturated": v for k, v in sat.items()}},
                     log=False)
        ax.set_ylim(-0.03, 1.03)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set(xlabel="epoch (0 = initialization)", ylabel="share of the layer's units", title=title)
        if dead or sat:
            ax.legend(loc="best", fontsize=8)
        else:
            ax.text(0.5, 0.5, "no ReLU, sigmoid or tanh layers", ha="center", va="center", transform=ax.transAxes)
    return Path(path)


def overfitting_curves(history, path, title="Training and validation loss"):
    """Loss and accuracy per epoch, train against validation. Once validation loss has risen 3
    epochs in a row while training loss fell, the epoch of lowest validation loss before that is
    marked as where overfitting began (:func:`fnn.training.diagnostics.overfitting_epoch`)."""
    from fnn.training.diagnostics import OVERFIT_EPOCHS, overfitting_epoch

    start = overfitting_epoch(history)
    with _figure(11, 4.2, path) as fig:
        axes = fig.subplots(1, 2)
        for ax, key in zip(axes, ("loss", "accuracy")):
            _line(ax, history, key, "train", TRAIN)
            _line(ax, history, "val_" + key, "validation", VAL)
            if start is not None:
                ax.axvline(start, color=WRONG, linestyle="--", linewidth=1.2)
                ax.axvspan(start, max([start, *_column(history, key)[0]]), color=WRONG, alpha=0.07)
            ax.set(title=key.capitalize(), xlabel="epoch", ylabel=key)
            ax.xaxis.get_major_locator().set_params(integer=True)
            if ax.get_legend_handles_labels()[0]:
                ax.legend()
        if start is not None:
            axes[0].annotate(f"overfitting from epoch {start}", (start, 1), xycoords=("data", "axes fraction"),
                             xytext=(4, -4), textcoords="offset points", va="top", fontsize=9, color=WRONG)
        note = (f"overfitting from epoch {start}" if start is not None
                else f"no overfitting seen (validation loss never rose {OVERFIT_EPOCHS} epochs in a row)")
        fig.suptitle(f"{title}: {note}")
    return Path(path)


def saliency_maps(images, saliency, y_true, probs, classes, path, image_shape=None, title="Saliency: dL/dx of the true class"):
    """Each input above its input gradient ``dL/dx`` (``saliency``, shaped like the images).

    Red pixels raise the loss of the true class when brightened, blue ones lower it
    (they push the prediction towards the true class); each map has its own symmetric scale.
    """
    images = _as_tiles(images, image_shape).astype(np.float32)
    sal = _as_tiles(saliency, images.shape[1:]).astype(np.float32)
    y, pred, conf = _predictions(y_true, probs)
    names = _names(classes, np.shape(probs)[1])
    n = len(images)
    with _figure(1.45 * max(n, 4) + 0.4, 3.6, path, layout=None) as fig:
        axes = fig.subplots(2, n, squeeze=False, gridspec_kw={"hspace": 0.08, "wspace": 0.06, "top": 0.78, "bottom": 0.08,
                                                              "left": 0.02, "right": 0.98})
        for i in range(n):
            axes[0, i].imshow(images[i], cmap="gray_r", interpolation="nearest")
            color = RIGHT if pred[i] == y[i] else WRONG
            axes[0, i].set_title(f"true {_short(names[y[i]], 8)}\nsaid {_short(names[pred[i]], 8)} {_pct(conf[i])}",
                                 fontsize=8, color=color, fontweight="normal")
            m = float(np.abs(sal[i]).max()) or 1.0
            axes[1, i].imshow(sal[i], cmap="RdBu_r", vmin=-m, vmax=m, interpolation="nearest")
        for ax in axes.ravel():
            ax.set_axis_off()
        fig.text(0.5, 0.015, "below each input: dL/dx (red raises the true class's loss, blue lowers it)",
                 ha="center", fontsize=8, color="#444")
        fig.suptitle(title, y=0.98)
    return Path(path)


# ---------------------------------------------------------------- teaching pictures (fnn.datasets.toy)


def _light(color, amount=0.7):
    """``color`` as RGB, mixed with ``amount`` of white."""
    from matplotlib.colors import to_rgb

    rgb = np.asarray(to_rgb(color))
    return rgb + (1 - rgb) * amount


def decision_boundary(model, params, x, y, path, classes=None, resolution=200, title="Decision boundary"):
    """The class ``model`` predicts at every point of a ``resolution x resolution`` grid covering ``x``
    (2-D inputs, ``x: (n, 2)``), with the points ``(x, y)`` on top, coloured by their true class.

    A model with one output is binary (the logit of class 1): class 1 where the logit
    is above 0. Otherwise the class is the argmax of the logits (what :func:`fnn.predict`
    gives). The lines are where the winning logit ties the runner-up (the logit is 0 for
    one output). Points the model gets wrong are crossed out; the title gives the share it gets right.
    """
    from fnn.train import predict_outputs

    x, y = np.asarray(x), np.asarray(y).ravel()
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"decision_boundary draws 2-D inputs: x must be (n, 2), got shape {x.shape}")
    if len(y) != len(x) or not len(x):
        raise ValueError(f"x has {len(x)} rows and y has {len(y)}: they must be the same, at least 1")
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or resolution < 2:
        raise ValueError(f"resolution must be an integer >= 2, got {resolution!r}")
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)

    def classify(points):
        """``(classes, margin)``: the predicted class, and how far its logit is above the runner-up's."""
        z = predict_outputs(model, params, points.astype(dtype)).astype(np.float64)
        if z.shape[1] == 1:
            return (z[:, 0] > 0).astype(np.int64), np.abs(z[:, 0])
        top2 = np.sort(z, axis=1)[:, -2:]
        return z.argmax(axis=1), top2[:, 1] - top2[:, 0]

    lo, hi = x.min(axis=0), x.max(axis=0)
    pad = 0.08 * np.maximum(hi - lo, 1e-3)
    gx, gy = np.meshgrid(np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution),
                         np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution))
    grid, margin = classify(np.stack([gx.ravel(), gy.ravel()], axis=1))
    grid, margin = grid.reshape(gx.shape), margin.reshape(gx.shape)
    pred, _ = classify(x)
    k = max(2, int(grid.max()) + 1, int(y.max()) + 1)
    names, colors = _names(classes, k), _palette(k)
    light = np.stack([_light(c) for c in colors])
    wrong = pred != y
    with _figure(6.6, 5.8, path) as fig:
        ax = fig.subplots()
        ax.imshow(light[grid], origin="lower", extent=(gx[0, 0], gx[0, -1], gy[0, 0], gy[-1, 0]), aspect="auto")
        for c in np.unique(grid):  # region c's edge: where its logit stops winning (margin 0 on it, signed)
            ax.contour(gx, gy, np.where(grid == c, margin, -margin), levels=[0.0], colors="#444", linewidths=0.9)
        size = 22 if len(x) <= 600 else 10
        for c in range(k):
            pts = x[y == c]
            ax.scatter(pts[:, 0], pts[:, 1], s=size, color=colors[c], edgecolors="white", linewidths=0.5, label=names[c],
                       zorder=3)
        if wrong.any():
            ax.scatter(x[wrong, 0], x[wrong, 1], s=size * 1.6, marker="x", color="black", linewidths=1.1,
                       label=f"wrong ({int(wrong.sum())})", zorder=4)
        ax.grid(False)
        ax.set(xlabel="x[0]", ylabel="x[1]")
        ax.set_title(f"{title}\n{np.mean(~wrong):.1%} of {len(x)} points right")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), title="true class", frameon=False)
    return Path(path)


def _cover(bounds, paths):
    """``bounds`` widened to take in the finite points of ``paths``, by at most one span each way."""
    out = []
    for axis, (lo, hi) in enumerate(bounds):
        span = hi - lo
        vals = [v for p in paths.values() for v in np.asarray(p, float)[:, axis] if math.isfinite(v)]
        if vals:
            lo, hi = max(lo - span, min(lo, min(vals) - 0.04 * span)), min(hi + span, max(hi, max(vals) + 0.04 * span))
        out.append((lo, hi))
    return out


def optimizer_paths(paths, path, surface="rosenbrock", title=None):
    """One path per optimizer on the contours of a 2-D loss surface (:data:`fnn.datasets.toy.SURFACES`).

    ``paths``: ``{label: (steps + 1, 2) array}``, e.g. :func:`fnn.datasets.toy.trajectories`;
    ``surface``: a surface name or :class:`~fnn.datasets.toy.Surface`. The legend gives each
    path's final distance to the minimum (or "diverged"); the star is the minimum.
    """
    from matplotlib.colors import LogNorm

    from fnn.datasets import toy

    surf = toy.surface(surface)
    (x0, x1), (y0, y1) = _cover(surf.bounds, paths)
    gx, gy = np.meshgrid(np.linspace(x0, x1, 400), np.linspace(y0, y1, 400))
    z = surf.value(np.stack([gx, gy], axis=-1))
    if surf.log_levels:
        levels, norm = np.geomspace(max(float(z.min()), 1e-2), float(z.max()), 16), LogNorm()
    else:
        levels, norm = np.linspace(0, math.sqrt(float(z.max())), 16)[1:] ** 2, None  # evenly spaced ellipses
    steps = max((len(p) - 1 for p in paths.values()), default=0)
    with _figure(9.6, 5.6, path) as fig:
        ax = fig.subplots()
        ax.contourf(gx, gy, z, levels=levels, norm=norm, cmap="Greys", alpha=0.28, extend="both")
        ax.contour(gx, gy, z, levels=levels, norm=norm, colors="#999", linewidths=0.6)
        for (label, p), color in zip(paths.items(), _palette(len(paths))):
            p = np.asarray(p, float)
            finite = np.isfinite(p).all(axis=1)
            end = p[finite][-1] if finite.any() else p[0]
            note = f"{math.hypot(*(end - surf.minimum)):.2g}" if finite.all() else "diverged"
            ax.plot(p[finite, 0], p[finite, 1], "-", color=color, linewidth=1.6, alpha=0.9, label=f"{label}: {note}")
            if finite.all():
                ax.plot(*end, "o", color=color, markersize=6, markeredgecolor="white", zorder=4)
        start = next(iter(paths.values()))[0] if paths else surf.start
        ax.plot(*start, "o", color="black", markersize=7, zorder=5, label="start")
        ax.plot(*surf.minimum, "*", color="gold", markersize=17, markeredgecolor="black", zorder=5, label="minimum")
        ax.set(xlim=(x0, x1), ylim=(y0, y1), xlabel="x", ylabel="y")
        ax.grid(False)
        ax.set_title(title or f"Optimizers on the {surf.name} surface: {steps} steps each")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=9, title="distance to the minimum at the end",
                  title_fontsize=9, alignment="left")
    return Path(path)


def learning_rate_schedules(schedules, steps, path, title="Learning-rate schedules"):
    """Learning rate against step ``0 .. steps - 1`` for each named schedule, on a linear and a log axis.

    ``schedules``: ``{name: schedule}``, each a function ``step -> lr`` (:mod:`fnn.optim`).
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    t = np.arange(int(steps))
    with _figure(12, 4.4, path) as fig:
        axes = fig.subplots(1, 2)
        for (name, schedule), color in zip(schedules.items(), _palette(len(schedules))):
            lr = np.array([schedule(int(i)) for i in t], float)
            for ax in axes:
                ax.plot(t, lr, color=color, linewidth=1.8, label=f"{name}: ends at {lr[-1]:.2g}")
        axes[1].set_yscale("log")
        axes[0].set(title="Linear axis", xlabel="step", ylabel="learning rate")
        axes[1].set(title="Log axis: the floor and the warm-up's start", xlabel="step", ylabel="learning rate (log)")
        axes[0].set_ylim(bottom=0)
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right center")
        fig.suptitle(title)
    return Path(path)


def _count_label(v, _=None):
    """``50000 -> "50k"``, ``2500000 -> "2.5M"``."""
    return f"{v / 1e6:g}M" if abs(v) >= 1e6 else f"{v / 1e3:g}k" if abs(v) >= 1e3 else f"{v:g}"


def _palette(n):
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


__all__ = [
    "training_curves",
    "confusion_matrix",
    "per_class_accuracy",
    "confused_pairs",
    "reliability_diagram",
    "sample_predictions",
    "misclassified_examples",
    "highest_loss_examples",
    "first_layer_weights",
    "conv_filters",
    "feature_maps",
    "compare_curves",
    "compare_scatter",
    "gradient_norms",
    "activation_histograms",
    "dead_units",
    "overfitting_curves",
    "saliency_maps",
    "decision_boundary",
    "optimizer_paths",
    "learning_rate_schedules",
]
