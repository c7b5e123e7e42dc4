"""Verified downloads: stream to a temporary file beside the target, check it, rename it into place.

A failed mirror (an HTTP error, a refused or dropped connection, a timeout, a
mirror slower than the deadline or the minimum rate allow, an oversized body,
a wrong checksum) leaves nothing behind and the next mirror is tried; when
all fail, one :class:`DownloadError` lists every URL and what it answered.
Progress goes to a callback ``progress(name, done_bytes, total_bytes or
None)``, so callers draw their own bar.

Three limits bound each attempt (one file from one mirror), however a mirror
trickles its bytes:

- ``timeout`` (:data:`TIMEOUT` s): how long a mirror may stay silent, to connect or between two reads;
- ``deadline`` (:data:`DEADLINE` s): the whole attempt, from the request to the last byte. A watchdog
  shuts the connection down when it passes, so headers sent a byte at a time are cut off too (only the
  name lookup, the TCP connect and the TLS handshake are bounded by ``timeout`` alone);
- ``min_rate`` (:data:`MIN_RATE` bytes/s): the average rate since the request, checked as bytes arrive
  once ``grace`` (:data:`RATE_GRACE` s) has passed; 0 turns it off.

SIGTERM during a download (in the main thread, unless the program handles
SIGTERM itself) is handled as Ctrl-C is: the temporary file is removed and
:class:`Terminated`, a ``KeyboardInterrupt``, is raised. A temporary that a
``kill -9`` left is removed by the next download of that file
(:mod:`fnn.datasets.temporaries`).
"""

from __future__ import annotations

import http.client
import math
import numbers
import os
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from fnn.datasets import temporaries
from fnn.datasets.base import DatasetError, DownloadError
from fnn.datasets.integrity import CHUNK, check, digest, remove_quietly

USER_AGENT = "fnn-datasets"
TIMEOUT = 30.0  # seconds a mirror may stay silent
DEADLINE = 3600.0  # seconds one file may take from one mirror (CIFAR-10's 170 MB at 47 KB/s)
MIN_RATE = 10_000.0  # bytes per second, on average; below it a mirror is hopeless (MNIST at 1 KB/s: 3 hours)
RATE_GRACE = 30.0  # seconds before the minimum rate applies (slow starts, redirects)
MAX_SECONDS = 1e6  # about 11.6 days: a longer timeout or deadline is a typo (and overflows socket timeouts)


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived during a download; raised, like Ctrl-C's ``KeyboardInterrupt``, once the temporary is removed."""


def _real(name: str, value, unit: str, low_open: bool, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number of {unit}, got {value!r}")
    v = float(value)
    low_ok = v > 0 if low_open else v >= 0
    if not (math.isfinite(v) and low_ok and v <= high):
        raise ValueError(f"{name} must be a number of {unit}, {'>' if low_open else '>='} 0 and at most {high:.0f}, got {v:g}")
    return v


def check_limits(timeout=TIMEOUT, deadline=DEADLINE, min_rate=MIN_RATE, grace=RATE_GRACE) -> tuple:
    """``(timeout, deadline, min_rate, grace)`` as floats; ``ValueError`` naming the first that is not usable.

    ``timeout`` and ``deadline`` must be seconds in ``(0, MAX_SECONDS]``, ``grace`` in
    ``[0, MAX_SECONDS]``, ``min_rate`` bytes per second, finite and >= 0 (NaN, inf, 1e400 are refused).
    """
    return (
        _real("timeout", timeout, "seconds", True, MAX_SECONDS),
        _real("deadline", deadline, "seconds", True, MAX_SECONDS),
        _real("min_rate", min_rate, "bytes per second", False, 1e15),
        _real("grace", grace, "seconds", False, MAX_SECONDS),
    )


def _describe(error, timeout) -> str:
    """What a mirror answered, in a few words."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        error = error.reason if isinstance(error.reason, BaseException) else error
        if isinstance(error, TimeoutError):
            return f"timed out after {timeout:g} s"
        return f"cannot connect ({error})"
    if isinstance(error, TimeoutError):
        return f"timed out after {timeout:g} s"
    if isinstance(error, DatasetError):
        return str(error)
    return f"{type(error).__name__}: {error}"


# ---------------------------------------------------------------- the deadline


class _Watchdog:
    """Shuts down the sockets of one attempt when ``seconds`` have passed, waking any read blocked on them.

    Only socket objects are held, never bare descriptors: a socket closed in
    the meantime has no descriptor left, so nothing else can be shut by mistake.
    """

    def __init__(self, seconds: float):
        self.lock = threading.Lock()
        self.sockets, self.expired, self.done = [], False, False
        self.timer = threading.Timer(seconds, self._expire)
        self.timer.daemon = True

    def __enter__(self):
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.cancel()
        with self.lock:
            self.done = True
            self.sockets.clear()

    def watch(self, sock):
        with self.lock:
            if not self.done and sock is not None:
                self.sockets.append(sock)
                if self.expired:
                    _shut(sock)

    def _expire(self):
        with self.lock:
            if self.done:
                return
            self.expired = True
            for sock in self.sockets:
                _shut(sock)

    def connection(self, http_class):
        """A factory like ``http_class`` whose connections hand their socket to this watchdog once connected."""

        def make(host, **kwargs):
            conn = http_class(host, **kwargs)
            connect = conn.connect

            def watched_connect():
                connect()
                self.watch(conn.sock)

            conn.connect = watched_connect
            return conn

        return make


def _shut(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # closed already
        pass


class _Watching:
    """Mixin for urllib's HTTP(S) handlers: every connection they open reports to a :class:`_Watchdog`."""

    def __init__(self, dog, **kwargs):
        super().__init__(**kwargs)
        self.dog = dog

    def do_open(self, http_class, req, **kwargs):
        return super().do_open(self.dog.connection(http_class), req, **kwargs)


class _HTTP(_Watching, urllib.request.HTTPHandler):
    pass


_HANDLERS = [_HTTP]
if hasattr(urllib.request, "HTTPSHandler"):  # Python built without ssl has none

    class _HTTPS(_Watching, urllib.request.HTTPSHandler):
        pass

    _HANDLERS.append(_HTTPS)


def _opener(dog):
    """urllib's default opener (proxies, redirects), its HTTP and HTTPS connections watched by ``dog``."""
    return urllib.request.build_opener(*(handler(dog) for handler in _HANDLERS))


# ---------------------------------------------------------------- one attempt


def _stream(url, f, limit, progress, name, limits) -> None:
    """Copy ``url``'s body into the open file ``f``, at most ``limit`` bytes, within ``limits``, reporting progress."""
    timeout, deadline, min_rate, grace = limits
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    start, done = time.monotonic(), 0
    with _Watchdog(deadline) as dog:
        try:
            with _opener(dog).open(request, timeout=timeout) as response:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                if total is not None and total > limit:
                    raise DatasetError(f"oversized: {total} bytes announced, at most {limit} expected")
                progress(name, done, total)
                read = getattr(response, "read1", response.read)  # read1: whatever has arrived, not a full chunk
                while chunk := read(CHUNK):
                    done += len(chunk)
                    if done > limit:
                        raise DatasetError(f"oversized: more than the {limit} bytes expected")
                    f.write(chunk)
                    progress(name, done, total)
                    elapsed = time.monotonic() - start
                    if elapsed > grace and done < min_rate * elapsed:
                        raise DatasetError(
                            f"too slow: {done} bytes in {elapsed:.1f} s ({done / elapsed / 1000:.3g} KB/s), "
                            f"below the minimum of {min_rate / 1000:g} KB/s"
                        )
                if total is not None and done == total:
                    return  # complete, whatever the watchdog did since the last byte
                if dog.expired:  # the read ended because the watchdog shut the connection
                    raise TimeoutError
                if total is not None:
                    raise DatasetError(f"connection dropped after {done} of {total} bytes")
        except Exception:
            if dog.expired:  # whatever the shut-down connection raised, the deadline is why
                raise DatasetError(f"too slow: not done by the deadline of {deadline:g} s ({done} bytes arrived)") from None
            raise


class _SigtermRaises:
    """While a download runs in the main thread, SIGTERM raises :class:`Terminated` (unless SIGTERM has a handler).

    Between :meth:`hold` and :meth:`release` a SIGTERM waits, and is raised by ``release`` (or on leaving):
    the temporary file is made there, so the code that removes it always knows its name.
    """

    def __init__(self):
        self.installed = self.holding = self.pending = False

    def __enter__(self):
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, self._handle)
            self.installed = True
        return self

    def __exit__(self, *exc):
        if self.installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        self.release()

    def _handle(self, signum, frame):
        if self.holding:
            self.pending = True
        else:
            raise Terminated("terminated by SIGTERM")

    def hold(self):
        self.holding = True

    def release(self):
        self.holding = False
        if self.pending:
            self.pending = False
            raise Terminated("terminated by SIGTERM")


def fetch_file(
    spec,
    folder,
    mirrors,
    progress=None,
    timeout: float = TIMEOUT,
    *,
    deadline: float = DEADLINE,
    min_rate: float = MIN_RATE,
    grace: float = RATE_GRACE,
) -> tuple:
    """Download ``spec`` (a :class:`FileSpec`) into ``folder`` from the first mirror that serves it intact.

    Args:
      spec: the file's name and pinned contents.
      folder: where it lands (created if needed), as ``folder / spec.name``.
      mirrors: base URLs, tried in order; the file's URL is ``base + spec.name``.
      progress: ``progress(name, done, total)`` while bytes arrive; ``total`` may be None.
      timeout: seconds to wait for a connection or for the next bytes.
      deadline: seconds one mirror may take for the whole file.
      min_rate: bytes per second a mirror must average once ``grace`` seconds have passed (0: no minimum).
      grace: seconds before ``min_rate`` applies.

    Returns:
      ``(path, url)``: the verified file and the URL that served it.

    Raises:
      ValueError: a limit that is not a usable number (NaN, inf, <= 0, beyond :data:`MAX_SECONDS`).
      DownloadError: every mirror failed; the message lists each URL and its answer.
      DatasetError: ``folder / spec.name`` is a pipe, device, socket, link or folder (nothing is downloaded).
      Terminated: SIGTERM arrived (the temporary file is removed first).
    """
    from fnn.serialization import OutputError, check_output

    limits = check_limits(timeout, deadline, min_rate, grace)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:  # the download is renamed over its target: never over a pipe, device, socket, link or folder
        check_output(folder / spec.name)
    except OutputError as e:
        raise DatasetError(f"{e}; move it away to download {spec.name}") from None
    temporaries.remove_stale(folder, spec.name)
    progress = progress or (lambda name, done, total: None)
    attempts = []
    with _SigtermRaises() as sigterm:
        for base in mirrors:
            url = base.rstrip("/") + "/" + spec.name
            sigterm.hold()
            fd, tmp = temporaries.create(folder, spec.name)  # a cache it cannot write to is an OSError, not a mirror's
            try:
                sigterm.release()  # a SIGTERM that came while the file was made is raised here, inside the try
                with os.fdopen(fd, "wb") as f:  # the lock lives as long as the descriptor
                    _stream(url, f, spec.max_download, progress, spec.name, limits)
                    f.flush()
                    os.fsync(f.fileno())
                    md5, size = digest(tmp, spec.gunzip, limit=spec.size)
                    check(url, md5, size, spec)
                os.replace(tmp, folder / spec.name)
                return folder / spec.name, url
            except (DatasetError, OSError, http.client.HTTPException, ValueError) as e:
                attempts.append((url, _describe(e, timeout).replace(str(tmp), url)))
            finally:
                remove_quietly(tmp)
    lines = "".join(f"\n  {url}: {answer}" for url, answer in attempts) or "\n  (no mirrors given)"
    raise DownloadError(f"{spec.name}: could not download from any mirror:{lines}", attempts)
