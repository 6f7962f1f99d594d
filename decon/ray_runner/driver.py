"""`decon ray` on the driver: plan, index into the object store, actors, dispatch, summary.

The reference index is built (or loaded from the index cache) once, here, while Ray starts or
connects; it then goes into the object store as numpy arrays, which every actor maps zero-copy
from its node's shared memory.
"""

from __future__ import annotations

import logging
import resource
import signal
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from decon.cloud.metrics import Metrics
from decon.common.config import DetectionConfig
from decon.detect.index_cache import load_or_build_index
from decon.errors import DeconError
from decon.ray_runner.dispatch import Dispatcher
from decon.ray_runner.plan import GB, make_plan
from decon.ray_runner.storage import open_store
from decon.ray_runner.worker import FileWorker, JobSpec, index_parts

log = logging.getLogger("decon.ray")

EXIT_OK = 0
EXIT_FAILED_FILES = 1
EXIT_STORAGE = 5
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # None: start a local Ray instance
    num_actors: int | None = None  # None: one per CPU of the cluster
    num_cpus: int | None = None  # CPUs of a local instance [default: all]
    object_store_mb: int | None = None  # object store of a local instance [default: Ray's]
    max_attempts: int = 3
    progress_interval: float = 10.0
    use_index_cache: bool = True


def setup_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    for noisy in ("botocore", "urllib3", "boto3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def connect(ray: Any, opts: RayOptions) -> None:
    """Join the cluster at ``opts.address``, or start a local instance."""
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                              "configure_logging": False}
    if opts.address:
        kwargs["address"] = opts.address
    else:
        kwargs.update(address="local", num_cpus=opts.num_cpus)
        if opts.object_store_mb:
            kwargs["object_store_memory"] = opts.object_store_mb << 20
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DeconError(f"cannot start or reach Ray ({opts.address or 'local'}): {first}") from None


def start_actors(ray: Any, count: int, config: DetectionConfig, job: JobSpec) -> list[Any]:
    remote = ray.remote(FileWorker).options(num_cpus=1, max_restarts=0, max_task_retries=0,
                                            scheduling_strategy="SPREAD")
    return [remote.remote(config, job) for _ in range(count)]


def _stop_actors(ray: Any, actors: list[Any]) -> None:
    """Let live actors remove their scratch folders (a few seconds at most), then end them all."""
    closing = [actor.close.remote() for actor in actors]
    try:
        ray.wait(closing, num_returns=len(closing), timeout=5)
    except Exception:  # noqa: BLE001 - dead actors: nothing to clean
        pass
    for actor in actors:
        try:
            ray.kill(actor, no_restart=True)
        except Exception:  # noqa: BLE001 - already gone
            pass


def _remove_temporary(job: JobSpec, run_id: str | None) -> None:
    specs = [job.reports] + ([job.cleaned] if job.cleaned and job.cleaned != job.reports else [])
    for spec in specs:
        try:
            n = open_store(spec).remove_temporary(run_id)
        except Exception as exc:  # noqa: BLE001 - clean-up is best effort; say so
            log.warning("Could not remove temporary outputs under %s: %s", spec.uri, exc)
            continue
        if n:
            log.info("Removed %d temporary output(s) under %s", n, spec.uri)


def _log_memory(dispatcher: Dispatcher) -> None:
    driver = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    parts = [f"driver peak RSS {driver:.0f} MB"]
    for node, actors in sorted(dispatcher.totals.node_peak_rss_mb.items()):
        parts.append(f"node {node[:12]}: {len(actors)} actor(s), peak RSS {max(actors.values()):.0f} MB "
                     f"max / {sum(actors.values()):.0f} MB sum")
    log.info("MEMORY %s", "; ".join(parts))


def run(config: DetectionConfig, job: JobSpec, opts: RayOptions) -> int:
    """The whole run; returns the exit code."""
    import ray

    setup_logging()
    metrics = Metrics()
    try:
        _remove_temporary(job, None)
        plan = make_plan(job)
    except (OSError, ValueError) as exc:
        raise DeconError(str(exc), exit_code=EXIT_STORAGE) from None
    except Exception as exc:  # noqa: BLE001 - botocore raises many kinds
        raise DeconError(f"listing failed: {exc}", exit_code=EXIT_STORAGE) from None
    if not plan.found:
        raise DeconError(f"no training data files (.json/.jsonl, plain or compressed, or Parquet/Arrow) under {job.input.uri}")
    log.warning("Files to process: %d (%.2f GB; largest first); skipped %d already finished",
                len(plan.todo), sum(f.size for f in plan.todo) / GB, plan.finished)
    metrics.files_total = len(plan.todo)
    try:
        if plan.todo:
            code = _process(ray, config, job, opts, [f.relative_path for f in plan.todo], metrics)
            if code:
                return code
        if metrics.failed_names:
            log.warning("Failed files (%d):", len(metrics.failed_names))
            for name in metrics.failed_names[:20]:
                log.warning("  - %s", name)
        log.warning("%s", metrics.summary())
        log.warning("WORK COMPLETE EXITING")
        return EXIT_FAILED_FILES if metrics.failed else EXIT_OK
    finally:
        if ray.is_initialized():  # after the summary: Ray's shutdown is not the job's time
            ray.shutdown()


def _start(ray: Any, config: DetectionConfig, job: JobSpec, opts: RayOptions, actors: list[Any]) -> Any:
    """Ray up, actors warming up, index in the object store; returns the index's object ref."""
    with ThreadPoolExecutor(1) as pool:  # the index loads while Ray starts and the actors warm up
        index_future = pool.submit(load_or_build_index, config, use_cache=opts.use_index_cache)
        connect(ray, opts)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        count = opts.num_actors or max(1, cpus)
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        log.info("Ray: %d node(s), %d CPU(s); starting %d actor(s)", nodes, cpus, count)
        actors += start_actors(ray, count, config, job)
        return ray.put(index_parts(index_future.result()))


def _process(ray: Any, config: DetectionConfig, job: JobSpec, opts: RayOptions, files: list[str],
             metrics: Metrics) -> int:
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    actors: list[Any] = []
    try:
        index_ref = _start(ray, config, job, opts, actors)

        def grow(live: int) -> list[Any]:  # replace lost actors, follow nodes that join during the run
            target = opts.num_actors or int(ray.cluster_resources().get("CPU", 0))
            return start_actors(ray, target - live, config, job) if target > live else []

        dispatcher = Dispatcher(ray, actors, files, metrics, index_ref, max_attempts=opts.max_attempts,
                                progress_interval=opts.progress_interval, grow=grow)
        metrics.started = time.monotonic()
        try:
            dispatcher.run()
        except KeyboardInterrupt:
            log.warning("Interrupted: %d file(s) unfinished; rerun to resume", metrics.files_total - metrics.finished)
            log.warning("%s", metrics.summary())
            return EXIT_INTERRUPTED
        dispatcher.log_progress()
        _log_memory(dispatcher)
        return EXIT_OK
    finally:
        signal.signal(signal.SIGTERM, previous)
        if ray.is_initialized():
            _stop_actors(ray, actors)
        _remove_temporary(job, job.run_id)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt()


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
