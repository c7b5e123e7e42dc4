"""``fnn-cli serve``: the drawing pad (:mod:`fnn_web`) through waitress, a production WSGI server."""

from __future__ import annotations

import click

from fnn_cli.common import WholeNumber, fail

MAX_WIRE_BODY = 4 << 20  # waitress refuses larger bodies itself; the app answers 413 past 1 MB


def split_paths(values) -> list[str]:
    """``("a,b", "c")`` -> ``["a", "b", "c"]``: --models is repeatable and takes comma-separated lists."""
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


def addresses(server) -> list[str]:
    """The URLs a waitress server listens on (one per socket)."""
    listen = getattr(server, "effective_listen", None) or [(server.effective_host, server.effective_port)]
    return [f"http://[{h}]:{p}/" if ":" in str(h) else f"http://{h}:{p}/" for h, p in listen]


@click.command()
@click.option(
    "--models",
    "models",
    multiple=True,
    metavar="RUN_OR_FILE",
    help="Run folder or model .npz to serve; repeat it or separate with commas; the first is the default. "
    "Default: the most recent MNIST run under runs/.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=WholeNumber(0, 65535), default=8000, show_default=True, help="Port (0: any free port).")
@click.option("--threads", type=WholeNumber(1, 64), default=4, show_default=True, help="Worker threads.")
def serve(models, host, port, threads):
    """Serve the drawing pad and its JSON API (POST /api/predict, GET /api/models, /api/sample, /healthz).

    \b
    Example:
      fnn-cli serve --models runs/mnist-784-128-64-10-20261130-120000 --port 8000
    """
    from fnn.training import runs

    paths = split_paths(models)
    if not paths:
        latest = runs.latest_run(runs.DEFAULT_ROOT, "mnist")
        if latest is None:
            fail(f"no MNIST run under {runs.DEFAULT_ROOT}/ to serve: train one with `fnn-cli fit --arch 784,128,64,10`, or pass --models RUN_OR_FILE")
        paths = [str(latest)]

    import logging

    import waitress

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth is N" under any burst

    from fnn_web import create_app
    from fnn_web.models import ModelLoadError, registry

    try:
        app = create_app({"MODELS": paths})
    except ModelLoadError as e:
        fail(f"--models: {e}")
    try:
        server = waitress.create_server(app, host=host, port=port, threads=threads, max_request_body_size=MAX_WIRE_BODY, ident="fnn")
    except (OSError, ValueError) as e:
        fail(f"cannot listen on {host}:{port} ({getattr(e, 'strerror', None) or e})")
    names = ", ".join(registry(app).models)
    click.echo(f"Serving {names} at {' '.join(addresses(server))} ({threads} threads; Ctrl-C to stop)")
    server.run()  # returns (closing the server) on Ctrl-C
