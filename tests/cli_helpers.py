"""Helpers for the CLI tests. Not a test module (pytest collects ``test_*.py`` only); test files import it."""

import time


def one_line(r, code, *needles):
    """``r`` (a CliRunner result) failed with ``code``: one line naming every needle, no traceback; returns the line."""
    assert r.exit_code == code, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error"), r.output
    assert "Traceback" not in r.output
    for needle in needles:
        assert str(needle) in lines[0], (needle, lines[0])
    return lines[0]


def wait_until(predicate, proc, timeout=60.0, poll=0.0005):
    """Poll ``predicate`` until it holds (True) or the process ``proc`` ends or time runs out (False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(poll)
    return False
