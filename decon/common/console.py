"""The rich console every command prints tables and matches on."""

from __future__ import annotations

import os
import sys

from rich.console import Console


def make_console() -> Console:
    """A console on stdout: styled on a terminal, plain text (no wrapping) elsewhere."""
    interactive = sys.stdout.isatty()
    width = None
    if not interactive and not os.environ.get("COLUMNS"):
        width = 120  # plain output is read in files and pagers: allow wide tables
    return Console(
        file=sys.stdout,
        width=width,
        highlight=False,
        markup=False,  # file names and eval texts may contain [brackets]
        emoji=False,
        soft_wrap=not interactive,
        no_color=bool(os.environ.get("NO_COLOR")) or None,
    )
