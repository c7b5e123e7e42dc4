"""``fnn-cli serve``: the drawing pad (:mod:`fnn_web`) through waitress, a production WSGI server.

waitress alone lets a client hold a connection for ever by sending a header
byte now and then (each byte resets its idle timeout), and stops accepting at
100 connections, so 110 slow clients starve everyone else. Here every request
has deadlines (see :func:`deadline_classes`): its request line and headers
must arrive within ``--header-timeout`` seconds of its start (the connection's
opening, or its first byte on a kept-alive connection), its body within
``--body-timeout`` seconds after the headers; a client that misses one gets a
JSON 408 and the connection is closed. ``--connection-limit`` (default 1000,
polled with ``poll()``, so not capped by ``select()``'s 1024 descriptors)
leaves room for the slow ones while they last; an idle kept-alive connection
is closed after ``IDLE_TIMEOUT`` seconds; headers are capped at
``MAX_HEADER_BYTES``.
"""

from __future__ import annotations

import functools
import json
import math
import socket
import time

import click

from fnn_cli.common import OptionError, WholeNumber, fail

MAX_WIRE_BODY = 4 << 20  # waitress refuses larger bodies itself; the app answers 413 past 1 MB
MAX_HEADER_BYTES = 32 << 10  # request line and headers (waitress: 256 KB, rescanned on every read: O(n^2))
IDLE_TIMEOUT = 30  # seconds a kept-alive connection may wait, idle, for its next request (waitress: 120)
LINGER = 2.0  # most seconds a timed-out connection is still read (input dropped) after its 408, for the client to close
SPARE_FILES = 64  # file descriptors beyond the connection limit: listening socket, trigger, model files, logs


class Seconds(click.ParamType):
    """A finite number of seconds, ``0 < s <= 3600``: ``--header-timeout nan`` -> ``--header-timeout must be ...``."""

    name = "seconds"

    def convert(self, value, param, ctx):
        try:
            s = float(value)
        except (TypeError, ValueError):
            raise OptionError(f"must be a number of seconds, got {value}", ctx, param) from None
        if not (math.isfinite(s) and 0 < s <= 3600):
            raise OptionError(f"must be a number of seconds in (0, 3600], got {value}", ctx, param)
        return s


def split_paths(values) -> list[str]:
    """``("a,b", "c")`` -> ``["a", "b", "c"]``: --models is repeatable and takes comma-separated lists."""
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


def addresses(server) -> list[str]:
    """The URLs a waitress server listens on (one per socket)."""
    listen = getattr(server, "effective_listen", None) or [(server.effective_host, server.effective_port)]
    return [f"http://[{h}]:{p}/" if ":" in str(h) else f"http://{h}:{p}/" for h, p in listen]


def create_server(app, host, port, threads=4, connection_limit=1000, header_timeout=10.0, body_timeout=30.0):
    """A waitress server for ``app`` whose connections have deadlines (see :func:`deadline_classes`).

    As ``waitress.create_server`` (one server per listening address, a
    ``MultiSocketServer`` over them when there are several), with the pad's
    limits; raises ``OSError`` or ``ValueError`` when it cannot listen.
    """
    from waitress.adjustments import Adjustments
    from waitress.server import MultiSocketServer
    from waitress.task import ThreadedTaskDispatcher

    _, server_class = deadline_classes()
    adj = Adjustments(host=host, port=port, threads=threads, connection_limit=connection_limit,
                      channel_timeout=IDLE_TIMEOUT, max_request_body_size=MAX_WIRE_BODY,
                      max_request_header_size=MAX_HEADER_BYTES, asyncore_use_poll=True, ident="fnn")
    adj.header_timeout, adj.body_timeout = header_timeout, body_timeout  # read by the channels
    # Deadlines are checked every `tick` seconds, and the event loop wakes at least that often
    # (Adjustments would round these two to whole seconds).
    adj.cleanup_interval = adj.asyncore_loop_timeout = min(1.0, header_timeout / 4, body_timeout / 4)
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(threads)
    channels = {}
    servers = [server_class(app, channels, dispatcher=dispatcher, adj=adj, sockinfo=info) for info in adj.listen]
    if len(servers) == 1:
        return servers[0]
    listen = [(s.effective_host, s.effective_port) for s in servers]
    return MultiSocketServer(channels, adj, listen, dispatcher, servers[-1].log_info)


@functools.cache
def deadline_classes():
    """``(DeadlineChannel, DeadlineServer)``: waitress's channel and TCP server with request deadlines.

    Built on first use, so that only ``fnn-cli serve`` imports waitress.
    """
    from waitress.channel import HTTPChannel
    from waitress.server import TcpWSGIServer

    class DeadlineChannel(HTTPChannel):
        """waitress's HTTP channel, plus the time the request being received began and its headers ended.

        ``request_started``: the connection's opening for its first request,
        else the first byte of the request; None between requests (then
        waitress's idle timeout applies). ``headers_done``: when the request's
        headers were complete, or None. Both are set on the event-loop thread,
        in :meth:`received`, and read there by :meth:`check_deadlines`.

        A timed-out connection (``timed_out``: when) gets its 408, then its
        sending side is shut down while its input is still read and dropped
        until the client closes, or sends nothing for a maintenance tick, or
        ``LINGER`` seconds pass: closing at once with unread input would make
        the kernel reset the connection, and the client would lose the 408.
        """

        timed_out = None
        write_shut = False

        def __init__(self, server, sock, addr, adj, map=None):
            super().__init__(server, sock, addr, adj, map)
            self.request_started, self.headers_done = self.creation_time, None

        def readable(self):
            return self.timed_out is not None or super().readable()

        def received(self, data):
            if self.timed_out is not None:
                return True  # after a 408: dropped
            before, now = self.request, time.time()
            result = super().received(data)
            if self.request is None:  # every request in `data` was complete
                self.request_started = self.headers_done = None
            else:
                if self.request is not before and (before is not None or self.request_started is None):
                    self.request_started, self.headers_done = now, None  # a new request began in `data`
                if self.headers_done is None and self.request.headers_finished:
                    self.headers_done = now
            return result

        def check_deadlines(self, now):
            """Answer 408 and close if the request being received missed its header or body deadline."""
            with self.requests_lock:
                if self.timed_out is not None:
                    quiet = self.write_shut and now - self.last_activity >= self.adj.cleanup_interval
                    if quiet or now - self.timed_out > LINGER:
                        self.will_close = True  # nothing unread is left to reset the connection, or enough waiting
                    return
                if self.requests or self.will_close or self.close_when_flushed or self.request_started is None:
                    return  # a request is being served, the connection is closing, or it is idle between requests
                if self.headers_done is None:
                    if now - self.request_started <= self.adj.header_timeout:
                        return
                    message = f"the request line and headers did not arrive within {self.adj.header_timeout:g} s"
                elif now - self.headers_done <= self.adj.body_timeout:
                    return
                else:
                    message = f"the request body did not arrive within {self.adj.body_timeout:g} s of the headers"
                self.time_out(message, now)

        def time_out(self, message, now):
            """Queue a JSON 408 naming the deadline; once it is sent, shut the sending side (see the class)."""
            body = json.dumps({"error": "Request Timeout", "message": message, "status": 408}).encode()
            head = ("HTTP/1.1 408 Request Timeout\r\nServer: fnn\r\nConnection: close\r\n"
                    "Content-Type: application/json\r\nX-Content-Type-Options: nosniff\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode()
            with self.outbuf_lock:
                self.outbufs[-1].append(head + body)
                self.current_outbuf_count += len(head) + len(body)
                self.total_outbufs_len += len(head) + len(body)
            if self.request is not None:
                self.request.close()
                self.request = None
            self.request_started = self.headers_done = None
            self.timed_out = now

        def handle_write(self):
            super().handle_write()
            if self.timed_out is not None and self.connected and not self.total_outbufs_len and not self.write_shut:
                self.write_shut = True
                try:
                    self.socket.shutdown(socket.SHUT_WR)  # the client reads the 408, then end of file
                except OSError:
                    self.will_close = True

    class DeadlineServer(TcpWSGIServer):
        """waitress's TCP server whose maintenance (every ``cleanup_interval`` s) also enforces the deadlines."""

        channel_class = DeadlineChannel

        def maintenance(self, now):
            for channel in list(self.active_channels.values()):
                channel.check_deadlines(now)  # first, so that a late request is answered 408 rather than dropped
            super().maintenance(now)  # closes connections idle longer than channel_timeout

    return DeadlineChannel, DeadlineServer


def reserve_files(connection_limit: int) -> None:
    """Raise the soft limit on open files to fit ``connection_limit`` connections, or fail naming both (exit 2)."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return
    need = connection_limit + SPARE_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            fail(f"--connection-limit {connection_limit} needs {need} open files, but this process may open only {hard} "
                 f"(ulimit -Hn): pass a smaller --connection-limit or raise the limit")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


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
@click.option("--connection-limit", type=WholeNumber(8, 100000), default=1000, show_default=True,
              help="Most open connections; past it, new ones wait in the listen queue.")
@click.option("--header-timeout", type=Seconds(), default=10.0, show_default=True,
              help="Seconds a request's line and headers may take (from the connection's opening, or the request's "
              "first byte); a client that is slower gets a 408 and is disconnected.")
@click.option("--body-timeout", type=Seconds(), default=30.0, show_default=True,
              help="Seconds a request's body may take after its headers (the pad's bodies are at most 1 MB).")
def serve(models, host, port, threads, connection_limit, header_timeout, body_timeout):
    """Serve the pad and its JSON API (POST /api/predict, GET /api/models[/NAME], /api/sample, /healthz).

    Digit models get a drawing canvas, Fashion-MNIST and CIFAR-10 models a photo box; each model's
    images are preprocessed as its dataset was.

    \b
    Example:
      fnn-cli serve --models runs/mnist-784-128-64-10-20261130-120000 --port 8000
      fnn-cli serve --models runs/mnist-a,runs/fashion-b,cifar.npz
    """
    from fnn.training import runs

    paths = split_paths(models)
    if not paths:
        latest = runs.latest_run(runs.DEFAULT_ROOT, "mnist")
        if latest is None:
            fail(f"no MNIST run under {runs.DEFAULT_ROOT}/ to serve: train one with `fnn-cli fit --arch 784,128,64,10`, "
                 "or pass --models RUN_OR_FILE")
        paths = [str(latest)]
    reserve_files(connection_limit)

    import logging

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth is N" under any burst

    from fnn_web import create_app
    from fnn_web.models import ModelLoadError, registry

    try:
        app = create_app({"MODELS": paths})
    except ModelLoadError as e:
        fail(f"--models: {e}")
    try:
        server = create_server(app, host, port, threads, connection_limit, header_timeout, body_timeout)
    except (OSError, ValueError) as e:
        fail(f"cannot listen on {host}:{port} ({getattr(e, 'strerror', None) or e})")
    names = ", ".join(registry(app).models)
    click.echo(f"Serving {names} at {' '.join(addresses(server))} ({threads} threads; Ctrl-C to stop)")
    server.run()  # returns (closing the server) on Ctrl-C
