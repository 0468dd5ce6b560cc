"""Answers queue for a slot in arrival order, generative and extractive apart; past a queue the API says 429 with
Retry-After."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

from rag.api.admission import AnswerQueue, AnswerQueueFullError
from rag.api.app import create_app
from tests.rag.api.conftest import TIDES, make_settings, upload


def _wait_until(condition, timeout: float = 10.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_waiting_requests_get_the_slot_in_arrival_order_and_the_queue_is_bounded():
    queue = AnswerQueue(slots=1, max_waiting=3)
    served: list[str] = []

    def request(name: str) -> None:
        with queue.admit():
            served.append(name)

    first = queue.admit()
    first.__enter__()
    threads = []
    for name in ("b", "c", "d"):  # each starts waiting only after the one before it is queued
        thread = threading.Thread(target=request, args=(name,))
        thread.start()
        threads.append(thread)
        _wait_until(lambda n=len(threads): queue.waiting == n)
    with pytest.raises(AnswerQueueFullError) as busy:
        with queue.admit():
            pass
    assert busy.value.waiting == 3 and busy.value.retry_after >= 1
    first.__exit__(None, None, None)
    for thread in threads:
        thread.join(timeout=10)
    assert served == ["b", "c", "d"] and queue.running == 0 and queue.waiting == 0


def test_retry_after_grows_with_the_queue_and_follows_how_long_answers_take():
    queue = AnswerQueue(slots=2, max_waiting=8, expected_seconds=4.0)
    assert queue.retry_after() == 2  # 4 s per answer, two slots, nobody waiting
    for _ in range(20):  # answers that take no time pull the estimate down to the floor of 1 s
        with queue.admit():
            pass
    assert queue.retry_after() == 1


@pytest.fixture
def app_client(tmp_path, tiny_lm_dir):
    settings = make_settings(tmp_path, generator={"model": str(tiny_lm_dir), "max_new_tokens": 8}, api={"generation_slots": 1, "generation_queue": 0, "answer_slots": 1, "answer_queue": 0})
    with TestClient(create_app(settings, warm_up="blocking")) as client:
        upload(client, "tides.md", TIDES)
        yield client


def test_a_request_past_its_queue_is_429_and_the_two_kinds_of_answer_queue_apart(app_client):
    queue = app_client.app.state.services.generation
    question = {"question": "What causes ocean tides?"}
    with queue.admit():  # another generative answer holds the only slot; nobody may wait
        busy = app_client.post("/ask", json={**question, "mode": "generative"})
        assert busy.status_code == 429 and int(busy.headers["retry-after"]) >= 1
        assert busy.json()["error"]["type"] == "rate_limit_error"
        chat = {"model": "generative", "messages": [{"role": "user", "content": question["question"]}]}
        assert app_client.post("/v1/chat/completions", json=chat).status_code == 429
        streamed = app_client.post("/v1/chat/completions", json={**chat, "stream": True})
        assert streamed.status_code == 429 and streamed.headers["content-type"].startswith("application/json")
        assert app_client.post("/ask", json={**question, "mode": "extractive"}).status_code == 200
    assert app_client.post("/ask", json={**question, "mode": "generative"}).status_code == 200
    with app_client.stream("POST", "/v1/chat/completions", json={**chat, "stream": True}) as response:
        assert response.status_code == 200
        assert [line for line in response.iter_lines() if line][-1] == "data: [DONE]"
    _wait_until(lambda: queue.running == 0)  # every answer gave its slot back, the streamed one too
    completion = {"model": "local", "prompt": "Tides are", "max_tokens": 4}
    with queue.admit():  # plain completions use the same generator, so the same slots
        assert app_client.post("/v1/completions", json=completion).status_code == 429
        assert app_client.post("/v1/completions", json={**completion, "stream": True}).status_code == 429
    assert app_client.post("/v1/completions", json=completion).status_code == 200
    with app_client.stream("POST", "/v1/completions", json={**completion, "stream": True}) as response:
        assert response.status_code == 200
        assert [line for line in response.iter_lines() if line][-1] == "data: [DONE]"
    _wait_until(lambda: queue.running == 0)
    extractive = app_client.app.state.services.answering
    with extractive.admit():
        busy = app_client.post("/ask", json={**question, "mode": "extractive"})
        assert busy.status_code == 429 and int(busy.headers["retry-after"]) >= 1
        assert app_client.post("/ask", json={**question, "mode": "generative"}).status_code == 200
    assert app_client.post("/ask", json={**question, "mode": "extractive"}).status_code == 200
    assert extractive.running == 0
