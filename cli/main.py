"""The ``fnn-cli`` command group; each command lives in its own module."""

import click

import fnn
from fnn.cli.data import data


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(fnn.__version__, prog_name="fnn-cli")
def cli():
    """fnn: train, evaluate and serve pure-NumPy neural networks.

    Example: fnn-cli fit --arch 784,128,64,10
    """


cli.add_command(data)
