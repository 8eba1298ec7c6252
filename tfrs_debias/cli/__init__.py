"""The ``tfrs-debias`` command line: one module per concern, each with ``cmd_*``
functions and a ``register(subparsers)``; `main` dispatches."""

from tfrs_debias.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
