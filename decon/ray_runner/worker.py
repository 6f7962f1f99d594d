"""What one Ray actor does: hold the shared index, scan the files the driver hands it, publish outputs.

The class is plain Python; the driver wraps it with ``ray.remote``. The constructor loads the
tokenizer (so actors warm up while the driver is still loading the index); the first call,
:meth:`FileWorker.ready`, receives the index as the dict of numpy arrays the driver put in the
object store. Ray hands those over as read-only views of the node's shared memory (zero-copy), so
every actor on a node reads the same pages and none rebuilds the index.

Per file (the work unit), in this order: fetch (S3: download to a scratch folder), scan with the
engine (:func:`decon.detect.api.scan_file`), publish the cleaned file (with purify), then the report
or the empty clean marker. The report/marker is the done marker, written last: a file counts as
finished only once every output of it is in place.
"""

from __future__ import annotations

import os
import resource
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from decon.cloud.naming import output_names
from decon.common.config import DetectionConfig
from decon.common.file_io import atomic_output
from decon.common.tokenizer import get_tokenizer
from decon.detect import api
from decon.detect.reference_index import IndexStats, ReferenceIndex
from decon.ray_runner.storage import StoreSpec, open_store


@dataclass(frozen=True)
class JobSpec:
    """Where a run reads and writes; the same for every actor."""

    input: StoreSpec
    reports: StoreSpec
    cleaned: StoreSpec | None  # set when purifying
    run_id: str
    scratch_dir: str | None = None  # where S3 inputs are downloaded [default: the system temp folder]


def index_parts(index: ReferenceIndex) -> dict[str, Any]:
    """What goes into the object store: the index's arrays plus its small metadata."""
    return {"arrays": dict(index.arrays), "meta": index.meta, "stats": index.stats.to_dict()}


def index_from_parts(parts: dict[str, Any]) -> ReferenceIndex:
    fields = IndexStats.__dataclass_fields__
    stats = IndexStats(**{k: v for k, v in parts["stats"].items() if k in fields})
    return ReferenceIndex(arrays=parts["arrays"], meta=parts["meta"], stats=stats)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _node_id() -> str:
    try:
        import ray

        return ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - outside Ray (or an old Ray): the host name will do
        return os.uname().nodename


class FileWorker:
    """One long-lived scanner; :meth:`process` handles one training file."""

    def __init__(self, config: DetectionConfig, job: JobSpec) -> None:
        get_tokenizer(config.tokenizer_str)  # cached per process; the index reuses it
        self.index: ReferenceIndex | None = None
        self.config = config
        self.job = job
        self.scratch = Path(tempfile.mkdtemp(prefix="decon-ray-", dir=job.scratch_dir))
        self.input = open_store(job.input, self.scratch)
        self.reports = open_store(job.reports, self.scratch)
        self.cleaned = open_store(job.cleaned, self.scratch) if job.cleaned else None
        self.node = _node_id()

    def ready(self, parts: dict[str, Any]) -> str:
        """Take the index (once) from the object store and warm the scanner up; returns the node id."""
        if self.index is None:
            self.index = index_from_parts(parts)
            api.prepare_scanner(self.index, self.config)  # lookup tables and kernels before the first file
        return self.node

    def process(self, relative: str) -> dict[str, Any]:
        """Scan one file and publish its outputs; never raises for a bad file (reported instead)."""
        started = time.perf_counter()
        try:
            result = self._process(relative)
        except Exception as exc:  # noqa: BLE001 - the file fails alone; the driver names it
            return {"relative": relative, "ok": False, "error": _one_line(exc), "node": self.node}
        result.update(relative=relative, ok=True, node=self.node, seconds=time.perf_counter() - started,
                      peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        return result

    def _process(self, relative: str) -> dict[str, Any]:
        names = output_names(relative)
        run_id = self.job.run_id
        if self.index is None:
            raise RuntimeError("ready() was not called: no index")
        local = self.input.fetch(relative, self.scratch)
        try:
            scan = api.scan_file(local, self.index, self.config)
            if self.cleaned is not None:
                with self.cleaned.output(names.cleaned, run_id) as dest:
                    api.write_purified(local, dest, scan.contaminated_lines, self.config.max_line_bytes,
                                       self.config.content_key)
        finally:
            self.input.release(local)
        if scan.entries:
            with self.reports.output(names.report, run_id) as dest:
                api.write_report(scan.entries, dest)
        else:
            with self.reports.output(names.clean_marker, run_id) as dest, atomic_output(dest):
                pass
        return {"contaminated": bool(scan.entries), "lines": scan.lines_total, "tokens": scan.tokens,
                "matches": len(scan.entries)}

    def close(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)
