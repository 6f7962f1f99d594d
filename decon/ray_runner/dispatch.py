"""The driver's loop: hand files to idle actors, collect results, survive lost actors.

Each actor has at most one file in flight, so a fast node simply comes back for more. When a call
fails because its actor died (its node was lost, or the process crashed), the file goes back to
the front of the queue for any live actor, up to ``max_attempts`` times. Every few seconds
``grow`` may add actors: replacements for lost ones where there is room, and one per CPU of nodes
that joined. Nothing is lost (the file is redone) and nothing is duplicated (outputs have fixed
names and are published atomically; only the first successful result is counted).
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from decon.cloud.metrics import Metrics

log = logging.getLogger("decon.ray")


@dataclass
class Totals:
    """Figures beyond the orchestrator's counters: tokens and per-node actor memory."""

    tokens: int = 0
    lines: int = 0
    node_peak_rss_mb: dict[str, dict[int, float]] = field(default_factory=dict)  # node -> actor -> MB
    requeued: int = 0


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_EXC_LINE = re.compile(r"^\s*(?:\(\w+ pid=\d+\)\s*)?([\w.]*(?:Error|Exception|Exit)\b.*)$")


def _reason(exc: BaseException) -> str:
    """One line: the innermost exception of a traceback Ray put in the message, else its first line."""
    lines = [_ANSI.sub("", line) for line in str(exc).strip().splitlines()]
    causes = [m.group(1) for m in map(_EXC_LINE.match, lines) if m]
    return (causes[-1] if causes else lines[0] if lines else type(exc).__name__).strip()


class Dispatcher:
    def __init__(self, ray: Any, actors: list[Any], files: list[str], metrics: Metrics, index_ref: Any, *,
                 max_attempts: int = 3, progress_interval: float = 10.0, actor_wait: float = 600.0,
                 on_result: Callable[[dict[str, Any]], None] | None = None,
                 grow: Callable[[int], list[Any]] | None = None, grow_interval: float = 5.0) -> None:
        self.ray = ray
        self.actors = actors
        self.index_ref = index_ref  # every actor's first call, ready(index), maps it
        self.pending: deque[str] = deque(files)
        self.metrics = metrics
        self.totals = Totals()
        self.max_attempts = max_attempts
        self.progress_interval = progress_interval
        self.actor_wait = actor_wait
        self.on_result = on_result
        self.attempts: dict[str, int] = {}
        self.inflight: dict[Any, tuple[int, str | None]] = {}  # ref -> (actor, file or None for a probe)
        self.idle: deque[int] = deque()  # FIFO: an actor that died while idle is tried (and found dead) soon
        self.dead: set[int] = set()
        self.done: set[str] = set()
        self.ever_ready: set[int] = set()
        self.start_failures = 0
        self.grow = grow  # called with the live actor count; returns new actors (nodes joined)
        self.grow_interval = grow_interval

    # ------------------------------------------------------------------ loop
    def run(self) -> None:
        for i, actor in enumerate(self.actors):
            self.inflight[actor.ready.remote(self.index_ref)] = (i, None)
        last_progress = last_alive = last_grow = time.monotonic()
        while self.pending or self._files_in_flight():
            ready, _ = self.ray.wait(list(self.inflight), num_returns=1, timeout=1.0)
            for ref in ready:
                self._collect(ref)
            self._assign()
            now = time.monotonic()
            if self.idle or self._files_in_flight():
                last_alive = now
            elif now - last_alive > self.actor_wait:
                self._fail_remaining(f"no live actor for {self.actor_wait:.0f}s")
            if now - last_progress >= self.progress_interval:
                self.log_progress()
                last_progress = now
            if self.grow is not None and self.pending and now - last_grow >= self.grow_interval:
                self._add_actors(self.grow(len(self.actors) - len(self.dead)))
                last_grow = now

    def _add_actors(self, new: list[Any]) -> None:
        for actor in new:
            self.actors.append(actor)
            self.inflight[actor.ready.remote(self.index_ref)] = (len(self.actors) - 1, None)
        if new:
            log.info("Started %d more actor(s) (lost ones replaced, joined nodes used); %d live",
                     len(new), len(self.actors) - len(self.dead))

    def _files_in_flight(self) -> bool:
        return any(f is not None for _, f in self.inflight.values())

    def _assign(self) -> None:
        while self.idle and self.pending:
            i = self.idle.popleft()
            rel = self.pending.popleft()
            self.attempts[rel] = self.attempts.get(rel, 0) + 1
            self.inflight[self.actors[i].process.remote(rel)] = (i, rel)

    # ------------------------------------------------------------------ results
    def _collect(self, ref: Any) -> None:
        i, rel = self.inflight.pop(ref)
        try:
            value = self.ray.get(ref)
        except self.ray.exceptions.RayActorError as exc:
            self._actor_lost(i, rel, exc)
            return
        self.idle.append(i)
        if rel is None:
            self.ever_ready.add(i)
            log.info("Actor %d ready on node %s", i, str(value)[:12])
        else:
            self._record(i, value)

    def _actor_lost(self, i: int, rel: str | None, exc: BaseException) -> None:
        reason = _reason(exc)
        if rel is None:  # the probe failed too: this actor will not come back
            log.warning("Actor %d is gone for good (%s)", i, reason[:200])
            self.dead.add(i)
            if i not in self.ever_ready:
                self.start_failures += 1
                if not self.ever_ready and self.start_failures >= max(3, len(self.actors)):
                    self._fail_remaining(f"no actor could start ({reason[:200]})")
            return
        log.warning("Actor %d lost while processing %s (%s); the file goes back to the queue",
                    i, rel, reason[:200])
        if self.attempts.get(rel, 0) >= self.max_attempts:
            self._fail(rel, f"its worker was lost {self.attempts[rel]} times")
        else:
            self.totals.requeued += 1
            self.pending.appendleft(rel)
        self.inflight[self.actors[i].ready.remote(self.index_ref)] = (i, None)  # answers only if the actor survived

    def _record(self, actor: int, result: dict[str, Any]) -> None:
        rel = result["relative"]
        if rel in self.done:  # a requeued file whose first attempt also came back
            return
        self.done.add(rel)
        if not result["ok"]:
            self._fail(rel, result["error"])
            return
        node = self.totals.node_peak_rss_mb.setdefault(result["node"], {})
        node[actor] = max(node.get(actor, 0.0), result["peak_rss_mb"])
        self.totals.tokens += result["tokens"]
        self.totals.lines += result["lines"]
        self.metrics.add(processed=1, **({"contaminated": 1} if result["contaminated"] else {"clean": 1}))
        log.info("DONE %s (%s)", rel, "contaminated" if result["contaminated"] else "clean")
        if self.on_result:
            self.on_result(result)

    def _fail(self, rel: str, reason: str) -> None:
        self.done.add(rel)
        log.error("FAILED %s: %s", rel, reason)
        self.metrics.fail(rel)

    def _fail_remaining(self, reason: str) -> None:
        while self.pending:
            self._fail(self.pending.popleft(), reason)

    # ------------------------------------------------------------------ reporting
    def log_progress(self) -> None:
        m = self.metrics
        elapsed = max(m.elapsed, 1e-9)
        live = len(self.actors) - len(self.dead)
        log.info("PROGRESS files %d/%d done (failed %d), %.2f M tokens/s, %.1fs elapsed, %d actor(s)",
                 m.finished, m.files_total, m.failed, self.totals.tokens / elapsed / 1e6, elapsed, live)
