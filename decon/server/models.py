"""Request and response bodies of the HTTP API (pydantic; they also describe the API at /docs)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

JobStatusName = Literal["pending", "processing", "completed", "failed"]


class SubmitRequest(BaseModel):
    """A training file to scan; relative paths are taken from the server's working directory."""

    file_path: str = Field(..., description="Path of a .json/.jsonl file (plain or .gz/.zst/.zstd/.bz2/.xz)",
                           examples=["/data/shard-00001.jsonl.gz"])


class SubmitResponse(BaseModel):
    job_id: str = Field(..., description="Identifier to poll with GET /status/{job_id}")


class JobStatusResponse(BaseModel):
    job_id: str
    status: JobStatusName
    output_path: str | None = Field(None, description="Contamination report; only when contamination was found")
    purified_path: str | None = Field(None, description="Cleaned copy of the file; only with --purify")
    error: str | None = Field(None, description="Why the job failed; only when status is failed")


class ErrorResponse(BaseModel):
    error: str


class JobCounts(BaseModel):
    pending: int = 0
    processing: int = 0
    completed: int = 0
    failed: int = 0


class WorkerInfo(BaseModel):
    worker: int = Field(..., description="Worker slot number")
    pid: int | None = Field(None, description="Process id of the worker process")
    job_id: str | None = Field(None, description="Job the worker is running, if any")


class LoadingResponse(BaseModel):
    status: Literal["loading"] = "loading"


class HealthResponse(BaseModel):
    status: Literal["ok", "shutting_down"]
    worker_threads: int
    report_output_dir: str
    cleaned_output_dir: str | None
    purify: bool
    mode: str
    recall: bool = Field(False, description="Whether the recall pass runs after SIMPLE (--recall)")
    semantic: bool = Field(False, description="Whether the semantic pass runs after the recall pass (--semantic)")
    contamination_score_threshold: float
    queue_depth: int = Field(..., description="Jobs waiting for a worker")
    jobs: JobCounts
    workers: list[WorkerInfo]
    index_build_seconds: float | None = None
    uptime_seconds: float
    journal_error: str | None = Field(None, description="Why the job journal cannot be written (a full "
                                      "disk), until it can be and has caught up")
    journal_behind: int = Field(0, description="Jobs whose outcome is known (and shown by /status) but "
                                "not yet written to the job journal; written once it can be")
