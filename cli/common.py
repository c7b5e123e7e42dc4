"""Shared pieces of the CLI: one-line errors, option types, output helpers."""

from __future__ import annotations

import sys

import click

from fnn.config import ConfigError, parse_arch


class Group(click.Group):
    """A click group whose usage errors are one line (``Error: ...``) with exit code 2, never a traceback.

    An ``OSError`` (a full disk, an unwritable folder) or running out of memory is one line with exit code 1.
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as e:
            click.echo(f"Error: {e.format_message()}", err=True)
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(130)
        except BrokenPipeError:
            sys.exit(1)
        except OSError as e:  # a full disk, a folder that cannot be written: one line, exit 1
            where = f"{e.filename}: " if e.filename else ""
            click.echo(f"Error: {where}{e.strerror or e}", err=True)
            sys.exit(1)
        except MemoryError:
            click.echo("Error: out of memory", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


class UserError(click.ClickException):
    """Bad input from the user: one line, exit code 2."""

    exit_code = 2


class ArchType(click.ParamType):
    """``784,128,64,10``: comma-separated layer sizes, at least two, all >= 1."""

    name = "SIZES"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            return parse_arch(value)
        except ConfigError as e:
            self.fail(str(e), param, ctx)


def fail(message: str):
    """Abort the command with a one-line user error (exit 2)."""
    raise UserError(message)


def config_errors(fn):
    """Run ``fn`` turning library input errors into one-line exit-2 errors."""
    try:
        return fn()
    except ConfigError as e:
        fail(str(e))
