"""Removing a job's output files: when the job fails or is interrupted, and stale ones at start-up.

A job writes ``<report dir>/<job_id>.report.jsonl`` and ``<cleaned dir>/<job_id>.jsonl.gz`` (or
``<job_id>.parquet``, ``.arrow``, ... for a columnar input), each
under a temporary name ``.<final name>.<random>.tmp`` first. A job that does not complete leaves
neither: not the temporary files of a killed process, nor a report already renamed while the
cleaned copy was still being written.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Mapping

from decon.server.worker import PURIFIED_EXTENSIONS, purified_path, remove_partial_outputs, report_path

_ID = r"(?P<id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
_EXT = "|".join(re.escape(e[1:]) for e in (".report.jsonl", *PURIFIED_EXTENSIONS))
_TEMP_NAME = re.compile(rf"\.{_ID}\.(?:{_EXT})\..+\.tmp")
_FINAL_NAME = re.compile(rf"{_ID}\.(?:{_EXT})")


def output_dirs(report_dir: str, cleaned_dir: str | None) -> list[str]:
    """The directories a job writes to (the cleaned copy goes to the report dir without a cleaned dir)."""
    return sorted({report_dir, cleaned_dir or report_dir})


def remove_job_outputs(job_id: str, report_dir: str, cleaned_dir: str | None) -> int:
    """Delete every output of ``job_id``, finished or not; returns how many files went."""
    removed = remove_partial_outputs(job_id, output_dirs(report_dir, cleaned_dir))
    cleaned = [purified_path(cleaned_dir or report_dir, job_id, "x" + ext) for ext in PURIFIED_EXTENSIONS]
    for path in (report_path(report_dir, job_id), *cleaned):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            removed += 1
    return removed


def sweep_stale_outputs(dirs: Iterable[str], jobs: Mapping[str, str]) -> int:
    """At start-up, when no job runs: delete temporary files of the journaled ``jobs`` (id -> status)
    and the outputs of those not completed. Files of jobs this journal does not know are left alone
    (they may belong to another server sharing the directory)."""
    removed = 0
    for d in sorted(set(dirs)):
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for entry in entries:
            temp = _TEMP_NAME.fullmatch(entry.name)
            final = None if temp else _FINAL_NAME.fullmatch(entry.name)
            if temp and temp["id"] in jobs or final and jobs.get(final["id"], "completed") != "completed":
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed += 1
    return removed
