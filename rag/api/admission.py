"""Answers hold the CPU: bounded, first-come-first-served queues in front of them.

At most `slots` answers of a kind run at once (llama.cpp on two cores gains nothing from a second
generation; extractive answers run best two at a time: 32 at once only fight over the cores); up to
`max_waiting` more wait their turn in arrival order, and a request past that is told at once to come back
later (HTTP 429 with `Retry-After`) instead of piling up threads and timing out.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class AnswerQueueFullError(RuntimeError):
    """Every slot is taken and the queue is full."""

    def __init__(self, waiting: int, retry_after: int) -> None:
        super().__init__(f"{waiting} answers are already waiting; try again in about {retry_after} s")
        self.waiting = waiting
        self.retry_after = retry_after


class AnswerQueue:
    """`admit()` holds a slot for the duration of its `with` block, waiting in arrival order."""

    def __init__(self, *, slots: int = 1, max_waiting: int = 8, expected_seconds: float = 4.0) -> None:
        self.slots = slots
        self.max_waiting = max_waiting
        self._running = 0
        self._waiting: deque[threading.Event] = deque()
        self._lock = threading.Lock()
        # A running mean of how long a slot is held, for `Retry-After` (starts from a typical answer's time).
        self._mean_seconds = expected_seconds

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        return self._running

    def retry_after(self) -> int:
        """Seconds until a request sent now would probably find room (whole seconds, at least 1)."""
        return max(1, math.ceil(self._mean_seconds * (len(self._waiting) + 1) / self.slots))

    @contextmanager
    def admit(self) -> Iterator[None]:
        with self._lock:
            if self._running < self.slots and not self._waiting:
                self._running += 1
                turn = None
            elif len(self._waiting) >= self.max_waiting:
                raise AnswerQueueFullError(len(self._waiting), self.retry_after())
            else:
                turn = threading.Event()
                self._waiting.append(turn)
        if turn is not None:
            turn.wait()  # `_release` hands this request its slot when it reaches the head of the queue
        started = time.monotonic()
        try:
            yield
        finally:
            self._release(time.monotonic() - started)

    def _release(self, held_seconds: float) -> None:
        with self._lock:
            self._mean_seconds = 0.8 * self._mean_seconds + 0.2 * held_seconds
            if self._waiting:
                self._waiting.popleft().set()  # the slot passes straight to the longest-waiting request
            else:
                self._running -= 1


def stream_holding(slot: ExitStack, events: Iterator[str]) -> StreamingResponse:
    """Server-sent `events` that keep the slot `slot` holds (taken before the status line, so a full queue is a
    429) until the stream ends, or until the response is done if the client left before the stream began."""
    def holding() -> Iterator[str]:
        with slot:
            yield from events

    return StreamingResponse(holding(), media_type="text/event-stream", headers=SSE_HEADERS,
                             background=BackgroundTask(slot.close))
