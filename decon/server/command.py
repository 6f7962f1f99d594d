"""The `decon server` sub-command: flags, start-up announcements and launching the HTTP server."""

from __future__ import annotations

import argparse
import errno
import socket
import sys
from typing import Any

from decon.errors import DeconError
from decon.server.limits import (
    DEFAULT_LINGER_BYTES,
    DEFAULT_LINGER_SECONDS,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_REQUEST_TIMEOUT,
    LISTEN_QUEUE,
)

DEFAULT_PORT = 8080
DEFAULT_HOST = "127.0.0.1"
DEFAULT_GRACE = 30.0


def register(subparsers: Any) -> None:
    from decon.detect.args import add_detection_args

    parser = subparsers.add_parser(
        "server",
        help="Run decon as an HTTP server for orchestrated pipelines",
        description="Build the reference index once, then scan training files submitted over HTTP "
                    "(POST /submit, GET /status/{job_id}, GET /health; API docs at /docs).",
    )
    srv = parser.add_argument_group("Server Configuration")
    srv.add_argument("--port", type=int, default=DEFAULT_PORT, metavar="PORT",
                     help=f"Port to listen on (0 picks a free port) [default: {DEFAULT_PORT}]")
    srv.add_argument("--host", default=DEFAULT_HOST, metavar="ADDR",
                     help=f"Address to listen on [default: {DEFAULT_HOST}]")
    srv.add_argument("--allowed-root", action="append", metavar="DIR",
                     help="Only accept files under DIR (symlinks resolved; repeatable) [default: any path]")
    srv.add_argument("--state-dir", metavar="DIR",
                     help="Where the job journal lives [default: <report-output-dir>/.decon-server]")
    srv.add_argument("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS, metavar="N",
                     help="Client connections kept open at most; beyond that the longest-idle one is "
                          "closed, or new requests get 503 if none is idle (lowered to fit the open-file "
                          f"limit) [default: {DEFAULT_MAX_CONNECTIONS}]")
    srv.add_argument("--request-timeout", type=float, default=DEFAULT_REQUEST_TIMEOUT, metavar="SECONDS",
                     help="Seconds a client has to send a request's head (else the connection is closed), "
                          f"and again its body (else 408) [default: {DEFAULT_REQUEST_TIMEOUT:g}]")
    srv.add_argument("--linger-bytes", type=int, default=DEFAULT_LINGER_BYTES, metavar="N",
                     help="After answering a request early (413 body too large, 408, 414, 431), read and "
                          "discard up to N more bytes the client still sends before closing, so the client "
                          f"reads the answer instead of a reset [default: {DEFAULT_LINGER_BYTES}]")
    srv.add_argument("--linger-seconds", type=float, default=DEFAULT_LINGER_SECONDS, metavar="SECONDS",
                     help="How long that lingering close may last; a client still sending after N bytes "
                          f"or this long is cut off [default: {DEFAULT_LINGER_SECONDS:g}]")
    srv.add_argument("--shutdown-grace", type=float, default=DEFAULT_GRACE, metavar="SECONDS",
                     help="On SIGTERM/SIGINT, how long running jobs may take to finish before they are "
                          f"interrupted (and kept pending) [default: {DEFAULT_GRACE:g}]")
    add_detection_args(parser)
    parser.set_defaults(func=run)


def _say(message: str) -> None:
    print(message, flush=True)


def _bind(host: str, port: int) -> socket.socket:
    """Bind and listen now, so the port is taken (and reported) before the index is built."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise DeconError(f"cannot resolve --host {host}: {exc.strerror}") from None
    family, socktype, proto, _name, addr = infos[0]
    sock = socket.socket(family, socktype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(LISTEN_QUEUE)
    except OSError as exc:
        sock.close()
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise DeconError(f"cannot listen on {host}:{port}: {reason}") from None
    sock.set_inheritable(False)
    return sock


def _announce(settings: Any, config: Any) -> None:
    _say(f"Running server with mode: {config.mode}")
    if config.recall:
        _say("Recall pass: on (question_exact, question_answer, short_exact)")
    if config.semantic:
        _say(f"Semantic pass: on (reworded questions, cosine >= {config.semantic_threshold}, numbers or answer "
             "agreeing)")
    _say(f"Using {settings.workers} worker threads")
    hint = " (set report directory with --report-output-dir)" if settings.report_dir_generated else ""
    _say(f"Contamination report output directory: {settings.report_dir}{hint}")
    if settings.purify:
        hint = " (set cleaned directory with --cleaned-output-dir)" if settings.cleaned_dir_generated else ""
        _say(f"Cleaned output directory: {settings.cleaned_dir}{hint}")
    _say(f"Job journal: {settings.state_dir}")
    if settings.allowed_roots:
        _say("Accepting files under: " + ", ".join(str(r) for r in settings.allowed_roots))


def _build_index(api: Any, config: Any, use_cache: bool) -> Any:
    """Build the index, or load it from the index cache unless --no-index-cache."""
    return api.build_index(config, progress=True, use_cache=use_cache)


def _index_summary(index: Any) -> str:
    """The engine's index summary table when it offers one, else one line."""
    stats = getattr(index, "stats", None)
    if stats is not None:
        try:
            from decon.detect.display import index_summary_table

            return index_summary_table(stats).rstrip("\n")
        except (ImportError, AttributeError, TypeError, ValueError):
            pass
    return f"Reference index built ({type(index).__name__})"


def run(args: argparse.Namespace) -> int:
    """Start the server; returns 0 after a graceful shutdown."""
    from decon.detect import api
    from decon.detect.args import config_from_args, validate_paths
    from decon.server.app import create_app
    from decon.server.connections import throttle_accept_errors, uvicorn_config
    from decon.server.jobs import JobTable
    from decon.server.journal import JobJournal
    from decon.server.limits import connection_budget, raise_open_file_limit
    from decon.server.outputs import output_dirs, sweep_stale_outputs
    from decon.server.runtime import ServerRuntime
    from decon.server.settings import create_output_dirs, settings_from
    from decon.server.shutdown import DrainingServer, GracefulShutdown

    config = config_from_args(args)
    validate_paths(config, need_training=False)
    settings = settings_from(args, config)
    create_output_dirs(settings)
    _announce(settings, config)

    journal = JobJournal(settings.state_dir)
    table = JobTable(journal)
    try:
        known, requeued = table.recover()
        if known:
            _say(f"Journal holds {known} job(s); {requeued} unfinished job(s) queued again")
        swept = sweep_stale_outputs(output_dirs(settings.report_dir, settings.cleaned_dir), table.statuses())
        if swept:
            _say(f"Removed {swept} leftover output file(s) of unfinished jobs")
        sock = _bind(settings.host, settings.port)
    except BaseException:
        table.close()
        raise
    host, port = sock.getsockname()[:2]
    shown_host = f"[{host}]" if ":" in host else host
    _say(f"Server listening on http://{shown_host}:{port}")

    use_cache = not getattr(args, "no_index_cache", False)

    def build(cfg: Any) -> Any:
        _say("Building index...")
        index = _build_index(api, cfg, use_cache)
        _say(_index_summary(index))
        return index

    files = raise_open_file_limit()
    max_connections = connection_budget(settings.max_connections, files.soft, settings.workers)
    if max_connections < settings.max_connections:
        _say(f"Open-file limit {files.soft}: keeping at most {max_connections} client connections")

    runtime = ServerRuntime(settings, config, table, build, log=_say)
    shutdown = GracefulShutdown(runtime, settings.shutdown_grace, log=_say)
    uv_config = uvicorn_config(create_app(runtime), max_connections, settings.request_timeout,
                               settings.linger_bytes, settings.linger_seconds)
    server = DrainingServer(uv_config, shutdown.on_signal,
                            on_loop_start=lambda loop: throttle_accept_errors(loop, _say),
                            on_listening=lambda: sock.listen(LISTEN_QUEUE))
    shutdown.server = server
    runtime.start_loading(on_failure=shutdown.stop_now)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        if not shutdown.done.is_set():  # stopped without a signal (start-up failure or crash)
            runtime.begin_shutdown()
            runtime.drain(0.0)
    if runtime.error is not None:
        if isinstance(runtime.error, DeconError):
            raise runtime.error
        raise DeconError(str(runtime.error))
    print("Server stopped.", file=sys.stderr, flush=True)
    return 0
