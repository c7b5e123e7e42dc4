"""Shared pieces of the CLI: one-line errors, option types, output helpers."""

from __future__ import annotations

import difflib
import signal
import sys

import click

from fnn.serialization import OutputError
from fnn.training.config import ConfigError, parse_arch, parse_augment, suggest_key


class Group(click.Group):
    """A click group whose usage errors are one line (``Error: ...``) with exit code 2, never a traceback.

    An output path naming a device, pipe, socket, link or the wrong kind of entry
    (:class:`fnn.serialization.OutputError`) is a usage error too. An ``OSError``
    (a full disk, an unwritable folder) or running out of memory is one line with
    exit code 1. SIGTERM during a dataset download (:class:`fnn.datasets.Terminated`)
    exits 143, as the shell reports a process SIGTERM ended; Ctrl-C exits 130.
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.NoSuchOption as e:
            click.echo(f"Error: {no_such_option(e)}", err=True)
            sys.exit(e.exit_code)
        except click.ClickException as e:
            click.echo(f"Error: {e.format_message()}", err=True)
            sys.exit(e.exit_code)
        except click.Abort as e:
            from fnn.datasets import Terminated

            if isinstance(e.__cause__, Terminated):
                click.echo("Error: terminated by SIGTERM during a download; its partial file was removed", err=True)
                sys.exit(128 + signal.SIGTERM)
            click.echo("Aborted.", err=True)
            sys.exit(130)
        except OutputError as e:
            click.echo(f"Error: {e}", err=True)
            sys.exit(2)
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


def no_such_option(e: click.NoSuchOption) -> str:
    """``no such option --learning-rate; did you mean --lr?``: Click's difflib guess, plus fnn's config-key synonyms."""
    name = e.option_name.split("=", 1)[0]
    command = e.ctx.command if e.ctx is not None else None
    opts = [o for p in (command.params if command else []) for o in (*p.opts, *p.secondary_opts) if o.startswith("--")]
    near = None
    key = suggest_key(name.lstrip("-"))  # fit's options are the config keys: learning-rate -> lr
    if key is not None and f"--{key.replace('_', '-')}" in opts:
        near = f"--{key.replace('_', '-')}"
    elif close := difflib.get_close_matches(name.lstrip("-"), [o[2:] for o in opts], n=1):  # "--" would inflate the match
        near = f"--{close[0]}"
    if near:
        return f"no such option {name}; did you mean {near}?"
    where = f"; see {e.ctx.command_path} --help" if e.ctx is not None else ""
    return f"no such option {name}{where}"


class OptionError(click.BadParameter):
    """A bad option value, said as ``--epochs must be a whole number, got 1.5`` (exit 2)."""

    def format_message(self) -> str:
        param = self.param
        if param is None:
            return self.message
        if isinstance(param, click.Option):
            name = max(param.opts, key=len)
        else:
            name = param.human_readable_name
        return f"{name} {self.message}"


class WholeNumber(click.IntRange):
    """An integer option, optionally bounded like :class:`click.IntRange`; ``1.5`` is refused by name.

    ``--epochs 1.5`` -> ``--epochs must be a whole number, got 1.5``; ``--epochs 0`` -> ``--epochs must be >= 1, got 0``.
    """

    name = "integer"

    def convert(self, value, param, ctx):
        if isinstance(value, bool):
            raise OptionError(f"must be a whole number, got {value}", ctx, param)
        if isinstance(value, int):
            n = value
        else:
            text = str(value).strip()
            try:
                n = int(text, 10)
            except ValueError:
                raise OptionError(f"must be a whole number, got {text}", ctx, param) from None
        low = self.min is not None and (n <= self.min if self.min_open else n < self.min)
        high = self.max is not None and (n >= self.max if self.max_open else n > self.max)
        if low or high:
            if self.min is not None and self.max is not None:
                bounds = f"between {self.min} and {self.max}"
            elif self.min is not None:
                bounds = f"{'>' if self.min_open else '>='} {self.min}"
            else:
                bounds = f"{'<' if self.max_open else '<='} {self.max}"
            raise OptionError(f"must be {bounds}, got {n}", ctx, param)
        return n


class UserError(click.ClickException):
    """Bad input from the user: one line, exit code 2."""

    exit_code = 2


class ArchType(click.ParamType):
    """``784,128,64,10`` (layer sizes), ``conv32x3,pool2,dense128,10`` (layers) or a preset (``lenet5``): see
    :mod:`fnn.training.arch`."""

    name = "ARCH"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            return parse_arch(value)
        except ConfigError as e:
            self.fail(str(e), param, ctx)


def number(value, spec=".4f") -> str:
    """``value`` formatted with ``spec``, or ``n/a`` when it is not a number (a damaged or partial record)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value, spec)
    return "n/a"


class AugmentType(click.ParamType):
    """``digits``, ``photos``, ``none`` or ``shift=2,rotate=10,...`` (:func:`fnn.datasets.augment.parse`); kept as text,
    checked here so a bad one is named by the option."""

    name = "AUGMENT"

    def convert(self, value, param, ctx):
        try:
            parse_augment(value)
        except ConfigError as e:
            self.fail(str(e), param, ctx)
        return value


def fail(message: str):
    """Abort the command with a one-line user error (exit 2)."""
    raise UserError(message)
