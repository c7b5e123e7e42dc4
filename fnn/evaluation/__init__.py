"""Evaluating trained models: reports, run comparisons and figures.

- :mod:`~fnn.evaluation.report`: ``evaluate`` / ``evaluate_run``: metrics, insights, pictures, ``report.md``;
- :mod:`~fnn.evaluation.markdown`: the Markdown of the report;
- :mod:`~fnn.evaluation.compare`: several runs side by side;
- :mod:`~fnn.evaluation.plotting`: every figure (matplotlib, loaded only when a picture is drawn).

The metrics themselves are in the core, :mod:`fnn.metrics`: the training step reports them too.
Importing this package imports none of them.
"""
