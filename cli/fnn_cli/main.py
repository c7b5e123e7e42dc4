"""The ``fnn-cli`` command group; each command lives in its own module."""

import click

import fnn
from fnn_cli.common import Group
from fnn_cli.compare import compare
from fnn_cli.data import data
from fnn_cli.evaluate import evaluate
from fnn_cli.fit import fit
from fnn_cli.plot import plot
from fnn_cli.predict import predict
from fnn_cli.runs import runs
from fnn_cli.serve import serve
from fnn_cli.sweep import sweep


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(fnn.__version__, prog_name="fnn-cli")
def cli():
    """fnn: train, evaluate and serve pure-NumPy neural networks.

    Example: fnn-cli fit --arch 784,128,64,10
    """


cli.add_command(fit)
cli.add_command(predict)
cli.add_command(runs)
cli.add_command(sweep)
cli.add_command(data)
cli.add_command(serve)
cli.add_command(evaluate)
cli.add_command(compare)
cli.add_command(plot)
