"""Long generations (video) as jobs: submitted at once, run one at a time, polled or followed as events."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

log = logging.getLogger(__name__)

JobStatus = Literal["queued", "running", "succeeded", "failed"]
Progress = Callable[[int, int], None]


class QueueFullError(RuntimeError):
    """Too many jobs waiting or running."""


@dataclass
class Job:
    id: str
    kind: str
    status: JobStatus = "queued"
    step: int = 0
    total_steps: int = 0
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    error: str | None = None
    result: bytes | None = None  # the finished output (e.g. an MP4)
    media_type: str = "application/octet-stream"
    details: dict = field(default_factory=dict)  # what the job reports beside its output (seed, frames...)

    @property
    def done(self) -> bool:
        return self.status in ("succeeded", "failed")


@dataclass(frozen=True)
class JobOutput:
    content: bytes
    media_type: str
    details: dict


class JobQueue:
    """One worker thread runs jobs in order (a CPU has no room for two videos at once); finished jobs are
    kept for polling, the oldest forgotten past `keep`."""

    def __init__(self, *, max_pending: int = 8, keep: int = 100) -> None:
        self.max_pending = max_pending
        self.keep = keep
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._work: list[tuple[Job, Callable[[Progress], JobOutput]]] = []
        self._changed = threading.Condition()
        self._worker: threading.Thread | None = None
        self._closed = False

    def submit(self, kind: str, run: Callable[[Progress], JobOutput]) -> Job:
        with self._changed:
            pending = sum(not job.done for job in self._jobs.values())
            if pending >= self.max_pending:
                raise QueueFullError(f"{pending} jobs are queued or running (the limit is {self.max_pending}); "
                                     "try again when one has finished")
            job = Job(id=f"job-{uuid.uuid4().hex[:24]}", kind=kind)
            self._jobs[job.id] = job
            self._work.append((job, run))
            self._forget_old()
            if self._worker is None:
                self._worker = threading.Thread(target=self._run_jobs, name="jobs", daemon=True)
                self._worker.start()
            self._changed.notify_all()
        return job

    def get(self, job_id: str) -> Job | None:
        with self._changed:
            return self._jobs.get(job_id)

    def wait_for_change(self, job: Job, seen: tuple, timeout: float) -> None:
        """Block until `job`'s (status, step) differs from `seen`, or `timeout` passes."""
        with self._changed:
            self._changed.wait_for(lambda: (job.status, job.step) != seen or self._closed, timeout=timeout)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def _forget_old(self) -> None:
        finished = [job_id for job_id, job in self._jobs.items() if job.done]
        for job_id in finished[: max(len(self._jobs) - self.keep, 0)]:
            del self._jobs[job_id]

    def _run_jobs(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._work or self._closed)
                if self._closed:
                    return
                job, run = self._work.pop(0)
                job.status = "running"
                self._changed.notify_all()

            def progress(step: int, total: int, job: Job = job) -> None:
                with self._changed:
                    job.step, job.total_steps = step, total
                    self._changed.notify_all()

            try:
                output = run(progress)
            except Exception as exc:  # noqa: BLE001 - a failed job reports its error; the worker goes on
                log.warning("job %s failed: %s", job.id, exc)
                with self._changed:
                    job.status, job.error, job.finished_at = "failed", f"{exc}", time.time()
                    self._changed.notify_all()
                continue
            with self._changed:
                job.result, job.media_type, job.details = output.content, output.media_type, output.details
                job.status, job.finished_at = "succeeded", time.time()
                self._changed.notify_all()
