"""Writing the HTML report of ``decon review --html`` (atomically, with a one-line error on bad input)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from decon.common.file_io import atomic_output
from decon.errors import DeconError
from decon.review.html import render_page
from decon.review.loader import find_report_files
from decon.review.records import Match


def _load_config(path: Path | None) -> object | None:
    if path is None:
        return None
    from decon.common.config import load_config_file

    if not path.is_file():
        raise DeconError(f"--config: file not found: {path}")
    return load_config_file(path)


def write_html_report(directory: Path, matches: Sequence[Match], output: Path, config_path: Path | None,
                      filters: Sequence[str] = ()) -> None:
    """Render ``matches`` (already filtered) from ``directory`` into ``output``."""
    config = _load_config(config_path)
    if output.exists() and output.is_dir():
        raise DeconError(f"--output is a directory: {output}")
    note = f"Filtered: {', '.join(filters)}" if filters else None
    page = render_page(directory, find_report_files(directory), matches, config, note)
    with atomic_output(output) as fh:
        fh.write(page.encode("utf-8"))
