"""Verified downloads: stream to a temporary file beside the target, check it, rename it into place.

A failed mirror (an HTTP error, a refused or dropped connection, a timeout, an
oversized body, a wrong checksum) leaves nothing behind and the next mirror is
tried; when all fail, one :class:`DownloadError` lists every URL and what it
answered. Progress goes to a callback ``progress(name, done_bytes, total_bytes
or None)``, so callers draw their own bar.
"""

from __future__ import annotations

import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from fnn.datasets.base import DatasetError, DownloadError
from fnn.datasets.integrity import CHUNK, check, digest, remove_quietly

USER_AGENT = "fnn-datasets"
TIMEOUT = 30.0


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


def _stream(url, f, limit, progress, name, timeout) -> None:
    """Copy ``url``'s body into the open file ``f``, at most ``limit`` bytes, reporting progress."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        if total is not None and total > limit:
            raise DatasetError(f"oversized: {total} bytes announced, at most {limit} expected")
        done = 0
        progress(name, done, total)
        while chunk := response.read(CHUNK):
            done += len(chunk)
            if done > limit:
                raise DatasetError(f"oversized: more than the {limit} bytes expected")
            f.write(chunk)
            progress(name, done, total)
        if total is not None and done != total:
            raise DatasetError(f"connection dropped after {done} of {total} bytes")


def fetch_file(spec, folder, mirrors, progress=None, timeout: float = TIMEOUT) -> tuple:
    """Download ``spec`` (a :class:`FileSpec`) into ``folder`` from the first mirror that serves it intact.

    Args:
      spec: the file's name and pinned contents.
      folder: where it lands (created if needed), as ``folder / spec.name``.
      mirrors: base URLs, tried in order; the file's URL is ``base + spec.name``.
      progress: ``progress(name, done, total)`` while bytes arrive; ``total`` may be None.
      timeout: seconds to wait for a connection or for the next bytes.

    Returns:
      ``(path, url)``: the verified file and the URL that served it.

    Raises:
      DownloadError: every mirror failed; the message lists each URL and its answer.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    progress = progress or (lambda name, done, total: None)
    attempts = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + spec.name
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{spec.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                _stream(url, f, spec.max_download, progress, spec.name, timeout)
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
