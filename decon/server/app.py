"""The HTTP API: GET /health, POST /submit, GET /status/{job_id}, GET /metrics (OpenAPI docs at /docs)."""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from decon import __version__
from decon.server.bodylimit import BodyLimitMiddleware
from decon.server.docs import add_offline_docs
from decon.server.journal import JobRecord, JournalError, storable_text
from decon.server.limits import MAX_BODY_BYTES
from decon.server.metrics import add_metrics_route
from decon.server.models import (
    ErrorResponse,
    HealthResponse,
    JobStatusResponse,
    LoadingResponse,
    SubmitRequest,
    SubmitResponse,
)
from decon.server.paths import PathRefused, check_submitted_path
from decon.server.runtime import LOADING, ServerRuntime


def _error(status_code: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status_code, content={"error": message})


def json_safe(value: Any) -> Any:
    """``value`` with lone surrogates escaped and non-finite floats spelled out: what any JSON
    body may contain once decoded, and what a response cannot encode."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {json_safe(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def status_body(rec: JobRecord) -> dict[str, str]:
    """The /status answer for a job: paths only once completed, the error only when failed."""
    body = {"job_id": rec.job_id, "status": rec.status}
    if rec.status == "completed":
        if rec.output_path:
            body["output_path"] = rec.output_path
        if rec.purified_path:
            body["purified_path"] = rec.purified_path
    elif rec.status == "failed":
        body["error"] = rec.error or "unknown error"
    return body


def create_app(runtime: ServerRuntime) -> FastAPI:
    app = FastAPI(
        title="decon server",
        version=__version__,
        description="Submit training files for contamination detection against a reference index "
                    "built once at start-up; poll for each job's report and cleaned file.",
        docs_url=None,  # served from packaged assets below: no CDN
        redoc_url=None,
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=MAX_BODY_BYTES, timeout=runtime.settings.request_timeout)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        """FastAPI's 422, with the echoed input made encodable (it may hold lone surrogates)."""
        return JSONResponse(status_code=422, content={"detail": json_safe(jsonable_encoder(exc.errors()))})

    add_offline_docs(app)
    add_metrics_route(app, runtime.metrics)

    @app.get("/health", response_model=HealthResponse,
             responses={503: {"model": LoadingResponse,
                              "description": "Index still loading, or the server is shutting down"}})
    async def health() -> JSONResponse:
        """Server settings, queue depth, job counts and worker processes (503 while loading)."""
        if runtime.state == LOADING:
            return JSONResponse(status_code=503, content={"status": "loading"})
        body = runtime.health()
        return JSONResponse(status_code=503 if body["status"] != "ok" else 200, content=body)

    @app.post("/submit", response_model=SubmitResponse,
              responses={400: {"model": ErrorResponse,
                               "description": "Missing, non-file, unsupported, too long or undecodable path"},
                         403: {"model": ErrorResponse, "description": "Path outside the allowed roots"},
                         413: {"model": ErrorResponse, "description": f"Body over {MAX_BODY_BYTES} bytes"},
                         503: {"model": ErrorResponse,
                               "description": "Server is shutting down, or the job journal cannot be written"},
                         507: {"model": ErrorResponse, "description": "The disk holding the job journal is full"}})
    def submit(request: SubmitRequest) -> JSONResponse:
        """Queue a training file; returns the job id to poll."""
        # A plain (threaded) handler: stat() on a slow network mount must not stall the event loop.
        if not runtime.table.accepting:
            return _error(503, "server is shutting down; not accepting new jobs")
        try:
            path = check_submitted_path(request.file_path, runtime.settings.allowed_roots)
        except PathRefused as refused:
            return _error(refused.status_code, refused.message)
        try:
            rec = runtime.table.submit(path)
        except JournalError as exc:
            return _error(507 if exc.full else 503, f"job not accepted: {exc.message}")
        if rec is None:
            return _error(503, "server is shutting down; not accepting new jobs")
        runtime.metrics.job_submitted()
        return JSONResponse(content={"job_id": rec.job_id})

    @app.get("/status/{job_id}", response_model=JobStatusResponse, response_model_exclude_none=True,
             responses={404: {"model": ErrorResponse, "description": "Unknown job id"}})
    async def status(job_id: str) -> JSONResponse:
        """A job's state; output_path appears only when contamination was found."""
        rec = runtime.table.get(job_id)
        if rec is None:
            return _error(404, "Job not found")
        return JSONResponse(content=status_body(rec))

    return app
