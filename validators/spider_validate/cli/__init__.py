"""The command line: one module per command, their shared options and input checks; `main` is the entry point.
May import every other package of spider_validate (nothing imports cli)."""

from spider_validate.cli.app import main

__all__ = ["main"]
