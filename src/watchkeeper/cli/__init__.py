"""The command line: a thin door into the library. ``main`` is the ``watchkeeper`` script."""

from watchkeeper.cli.commands import main

__all__ = ["main"]
