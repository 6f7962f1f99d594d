"""Building the reference index in a child process.

A build parses every eval record into Python objects, and CPython does not give that memory back
to the system when the objects are freed. The process that then scans the training data
(numba's compiler, the tokenizer, forked workers) would carry it for the whole run. So
``build_files`` starts a fresh interpreter that imports only the builder of the configured mode
(the detector registry imports algorithms on first use),
builds the index, writes it in the ``index_store`` layout and exits. The caller maps the written
arrays read-only (``index_store.read_entry``). Peak memory is then the larger of the two processes,
not their sum, and the pages are shared with every worker.

The child inherits stderr, so progress bars and warnings appear as before. It reports back on its
stdout as one JSON object: ``{"status": "saved" | "exists" | "fallback" | "error", ...}``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from decon.common.config import DetectionConfig
from decon.common.lifetime import die_with_parent
from decon.detect.detector import detector_for
from decon.errors import DeconError


@dataclass(frozen=True)
class BuildOutcome:
    """Where the child left the index: ``status`` "saved" (at ``dest``), "exists" (another process
    saved ``dest`` first; that copy is kept) or "fallback" (``dest`` was not writable: at
    ``path``, with ``error`` saying why)."""

    status: str
    path: Path
    error: str = ""


def build_files(config: DetectionConfig, dest: Path, *, fallback: Path | None = None,
                progress: bool = True) -> BuildOutcome:
    """Build the index of ``config`` in a child process and save it at ``dest`` (atomically).

    If ``dest`` cannot be written and ``fallback`` is given, it is saved there instead. Errors the
    user can fix come back as DeconError with the child's message; a crash of the child raises
    RuntimeError.
    """
    request = {"config": config.to_dict(), "dest": str(dest), "progress": progress,
               "fallback": str(fallback) if fallback is not None else None}
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])  # the folder holding the `decon` package
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    proc = subprocess.Popen([sys.executable, "-m", "decon.detect.index_build"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env=env)
    try:
        out, _ = proc.communicate(json.dumps(request).encode("utf-8"))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reply = _parse_reply(out, proc.returncode)
    status = reply.get("status")
    if status == "error":
        if reply.get("user"):
            raise DeconError(str(reply.get("message")), exit_code=int(reply.get("exit_code", 2)))
        raise RuntimeError(f"reference index build failed: {reply.get('message')}")
    if status in ("saved", "exists"):
        return BuildOutcome(status, dest)
    if status == "fallback" and fallback is not None:
        return BuildOutcome(status, fallback, str(reply.get("error", "")))
    raise RuntimeError(f"reference index build process gave an unknown reply: {reply!r}")


def _parse_reply(out: bytes, returncode: int) -> dict[str, Any]:
    try:
        reply = json.loads(out.decode("utf-8").strip().splitlines()[-1])
    except (UnicodeDecodeError, IndexError, ValueError):
        reply = None
    if isinstance(reply, dict):
        return reply
    if returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.Signals._value2member_map_ else -returncode
        raise RuntimeError(f"reference index build process was killed by signal {name}"
                           + (" (out of memory?)" if returncode == -signal.SIGKILL else ""))
    raise RuntimeError(f"reference index build process exited with code {returncode} and no result")


# ---------------------------------------------------------------------------------------------
# The child
# ---------------------------------------------------------------------------------------------

def _save(index: Any, dest: Path, fallback: Path | None) -> dict[str, Any]:
    from decon.detect.index_store import save_index

    try:
        save_index(index, dest)
    except FileExistsError:
        return {"status": "exists"}
    except (OSError, TypeError, ValueError) as exc:
        if fallback is None:
            return {"status": "error", "user": True, "message": f"cannot write the reference index to {dest}: {exc}"}
        save_index(index, fallback)
        return {"status": "fallback", "error": str(exc)}
    return {"status": "saved"}


def child_main() -> dict[str, Any]:
    """Read the request on stdin, build, save; the reply for the parent."""
    request = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    config = DetectionConfig(**request["config"])
    fallback = Path(request["fallback"]) if request.get("fallback") else None
    try:
        index = detector_for(config).build(config, progress=bool(request.get("progress")))
    except DeconError as exc:
        return {"status": "error", "user": True, "message": str(exc), "exit_code": exc.exit_code}
    return _save(index, Path(request["dest"]), fallback)


def _main() -> None:
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: the parent reports it, not a traceback here
    reply_fd = os.dup(1)
    os.dup2(2, 1)  # anything the builder prints goes to stderr; stdout carries only the reply
    try:
        reply = child_main()
    except Exception as exc:  # noqa: BLE001 - a bug: show it here, tell the parent in one line
        traceback.print_exc()
        reply = {"status": "error", "user": False, "message": f"{type(exc).__name__}: {exc}"}
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(reply_fd, (json.dumps(reply) + "\n").encode("utf-8"))
    os._exit(0)  # skip tearing down the build's objects: the parent has what it needs


if __name__ == "__main__":
    _main()
