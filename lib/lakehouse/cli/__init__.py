"""The ``lakehouse`` command line: the only place argparse lives."""

from lakehouse.cli.main import main

__all__ = ["main"]
