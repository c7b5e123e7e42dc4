"""``fnn-cli``: the command line on top of :mod:`fnn` (installed as ``fnn_cli``)."""
