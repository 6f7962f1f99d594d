"""Which files a `decon ray` run processes: every input not finished by an earlier run.

"Finished" is the orchestrator's rule (:func:`decon.cloud.naming.is_finished`): the report or the
clean marker is there and, when purifying, the cleaned file too. Outputs that live below the input
folder are never taken as inputs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from decon.cloud.naming import is_finished, output_names
from decon.cloud.s3listing import InputFile
from decon.ray_runner.storage import open_store, relative_prefix
from decon.ray_runner.worker import JobSpec

log = logging.getLogger("decon.ray")
GB = 1024 ** 3


@dataclass
class Plan:
    todo: list[InputFile]  # largest first
    found: int
    finished: int


def _output_prefixes(job: JobSpec) -> list[str]:
    outs = [job.reports.uri] + ([job.cleaned.uri] if job.cleaned else [])
    return [p for p in (relative_prefix(o, job.input.uri) for o in outs) if p]


def make_plan(job: JobSpec) -> Plan:
    """List the input and the outputs; keep the unfinished inputs, largest first."""
    inputs = open_store(job.input).list_inputs()
    skip = _output_prefixes(job)
    inputs = [f for f in inputs if not any(f.relative_path.startswith(p) for p in skip)]
    log.info("Found %d input files (%.2f GB) under %s", len(inputs), sum(f.size for f in inputs) / GB,
             job.input.uri)
    report_keys = open_store(job.reports).relative_keys()
    if job.cleaned is None:
        cleaned_keys: set[str] = set()
    elif job.cleaned.uri == job.reports.uri:
        cleaned_keys = report_keys
    else:
        cleaned_keys = open_store(job.cleaned).relative_keys()
    seen: dict[str, str] = {}
    todo = []
    for f in inputs:
        stem = output_names(f.relative_path).report
        if stem in seen:
            log.warning("%s and %s share output names; outputs of one will overwrite the other",
                        seen[stem], f.relative_path)
        seen[stem] = f.relative_path
        if not is_finished(f.relative_path, report_keys, cleaned_keys, job.cleaned is not None):
            todo.append(f)
    todo.sort(key=lambda f: (-f.size, f.relative_path))
    return Plan(todo=todo, found=len(inputs), finished=len(inputs) - len(todo))
