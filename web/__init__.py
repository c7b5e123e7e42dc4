"""The drawing pad: a Flask app on top of :mod:`fnn` (installed as ``fnn.web``)."""
