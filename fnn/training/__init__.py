"""Training pipelines on top of the core: configs, the run-folder loop, checkpoints, sweeps, diagnostics.

- :mod:`~fnn.training.config`: ``FitConfig``, one validated record per run, from YAML/JSON;
- :mod:`~fnn.training.fit`: ``fnn.fit``, the training loop on arrays, with callbacks and checkpoints
  (:mod:`~fnn.training.callbacks`, :mod:`~fnn.training.checkpoints`);
- :mod:`~fnn.training.experiment`: a FitConfig into a run folder through ``fnn.fit`` (what ``fnn-cli fit`` runs);
- :mod:`~fnn.training.runs`: run folders and what they hold;
- :mod:`~fnn.training.tracking`: the runs under a folder as records to filter and sort (``fnn-cli runs list``);
- :mod:`~fnn.training.diagnostics`: per-layer statistics and warnings during training;
- :mod:`~fnn.training.sweep`: grids of runs in local processes;
- :mod:`~fnn.training.dask`: the same grids on a Dask cluster.

Importing this package imports none of them.
"""
