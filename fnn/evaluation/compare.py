"""Compare finished runs: a table sorted by test accuracy (Markdown and CSV) and comparison figures.

>>> row = {"name": "784-64-10", "test_accuracy": 0.97, "params": 50890}
>>> markdown([row]).splitlines()[2].startswith("| 1 | 784-64-10 | 97.00% |")
True
"""

from __future__ import annotations

import csv
import io as _io
from pathlib import Path

from fnn import serialization
from fnn.evaluation.markdown import table
from fnn.evaluation.report import EvaluationError
from fnn.training import runs

TABLE_FILE, CSV_FILE = "compare.md", "compare.csv"
CURVES_FILE, SCATTER_FILE = "val_curves.png", "accuracy_vs_cost.png"
COLUMNS = ["name", "test_accuracy", "test_loss", "params", "epochs", "train_seconds", "optimizer", "lr",
           "batch_size", "dataset", "run"]


def run_row(run) -> dict:
    """One table row from a run folder's ``summary.json`` (missing figures are None)."""
    run = Path(run)
    if not runs.is_finished(run):
        what = "an unfinished run" if runs.is_run(run) else "not a run folder"
        raise EvaluationError(f"{run}: {what} (no {runs.SUMMARY} or {runs.MODEL})")
    try:
        s = runs.read_summary(run)
    except runs.RunError as e:
        raise EvaluationError(str(e)) from None
    arch = s.get("arch")
    return {
        "name": "-".join(map(str, arch)) if isinstance(arch, list) else run.name,
        **{k: s.get(k) for k in COLUMNS[1:-1]},
        "run": str(run),
    }


def _sorted(rows):
    """By test accuracy, best first; runs without one last, in the order given."""
    return sorted(rows, key=lambda r: -r["test_accuracy"] if isinstance(r.get("test_accuracy"), (int, float)) else 1.0)


def _unique_names(rows):
    """Runs sharing an architecture are told apart by their folder name."""
    names = [r["name"] for r in rows]
    for r in rows:
        if names.count(r["name"]) > 1:
            r["name"] = f"{r['name']} ({Path(r['run']).name})"
    return rows


def markdown(rows) -> str:
    """The comparison table in Markdown (rows as from :func:`run_row`, already sorted)."""

    def num(v, fmt):
        return "n/a" if v is None else format(v, fmt)

    body = [(i, r["name"], num(r.get("test_accuracy"), ".2%"), num(r.get("test_loss"), ".4f"), num(r.get("params"), ","),
             num(r.get("epochs"), "d"), num(r.get("train_seconds"), ".1f"), r.get("optimizer") or "n/a",
             num(r.get("lr"), "g"))
            for i, r in enumerate(rows, 1)]
    head = ["rank", "model", "test accuracy", "test loss", "params", "epochs", "seconds", "optimizer", "lr"]
    return "\n".join(table(head, body, align="rlrrrrrlr")) + "\n"


def to_csv(rows, columns=COLUMNS) -> str:
    """The rows as CSV, full precision, one column per ``columns`` entry."""
    buf = _io.StringIO()
    w = csv.DictWriter(buf, columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def write_text(path, text) -> None:
    serialization.atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def write_figures(out, histories, points, what="") -> list[Path]:
    """``val_curves.png`` (validation curve of each run in ``histories``) and ``accuracy_vs_cost.png`` (``points``:
    ``name``, ``test_accuracy``, ``params``, ``train_seconds``) in ``out``; ``what`` prefixes the titles."""
    from fnn.evaluation import plotting

    prefix = f"{what}: " if what else ""
    return [plotting.compare_curves(histories, Path(out) / CURVES_FILE, title=f"{prefix}Validation curves"),
            plotting.compare_scatter(points, Path(out) / SCATTER_FILE, title=f"{prefix}Test accuracy against size and time")]


def compare_runs(run_dirs, out_dir, pictures=True) -> dict:
    """Write ``compare.md``, ``compare.csv`` and (with ``pictures``) the figures into ``out_dir``.

    Returns ``{"rows": [...] (sorted, best first), "files": {name: path}}``.
    Raises :class:`fnn.evaluation.report.EvaluationError` for a path that is not a run folder.
    """
    if not run_dirs:
        raise EvaluationError("give at least one run folder to compare")
    try:
        serialization.check_output(out_dir, folder=True)
    except serialization.OutputError as e:
        raise EvaluationError(str(e)) from None
    rows = _unique_names(_sorted([run_row(r) for r in run_dirs]))
    try:
        histories = {r["name"]: runs.read_metrics(r["run"]) for r in rows} if pictures else {}
    except runs.RunError as e:
        raise EvaluationError(str(e)) from None
    out = Path(out_dir)  # made only once every input has been read
    out.mkdir(parents=True, exist_ok=True)
    files = {"table": out / TABLE_FILE, "csv": out / CSV_FILE}
    write_text(files["table"], markdown(rows))
    write_text(files["csv"], to_csv(rows))
    if pictures:
        files["curves"], files["scatter"] = write_figures(out, histories, rows)
    return {"rows": rows, "files": {k: str(v) for k, v in files.items()}}


__all__ = ["run_row", "markdown", "to_csv", "compare_runs", "COLUMNS"]
