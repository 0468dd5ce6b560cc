"""Every domain error reaches the client as a JSON error with its status, from the one table in rag/api/errors.py.

Each error is raised where the real ones come from (opening a collection's chain) and driven through `POST /ask`.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from generators.resolve import ModelUnavailableError
from generators.text.text_generators import GeneratorError
from index.milvus_store import MilvusUnavailableError
from index.store import BackendMismatchError, IndexLockedError, MissingIndexError
from rag.api.admission import AnswerQueueFullError
from rag.api.app import create_app
from rag.api.collections import Collection, UnknownCollectionError
from tests.rag.api.conftest import make_settings

CASES = [
    (MissingIndexError(Path("/srv/index")), 404, "not_found_error", {}),
    (UnknownCollectionError("no collection named 'x'"), 404, "not_found_error", {}),
    (IndexLockedError("another ingest holds the index"), 409, "conflict_error", {}),
    (BackendMismatchError(Path("/srv/index"), "milvus", "faiss"), 409, "conflict_error", {}),
    (AnswerQueueFullError(waiting=64, retry_after=3), 429, "rate_limit_error", {"retry-after": "3"}),
    (MilvusUnavailableError("milvus at http://db:19530 is not answering"), 503, "service_unavailable",
     {"retry-after": "5"}),
    (ModelUnavailableError("reranker", "org/model", "RAG_RERANK__MODEL"), 503, "model_unavailable", {}),
    (GeneratorError("the API refused the key", kind="auth", model="gpt-x"), 502, "upstream_error", {}),
    (ValueError("the question is empty"), 422, "invalid_request_error", {}),
]


@pytest.mark.parametrize(("error", "status", "kind", "headers"), CASES, ids=[type(c[0]).__name__ for c in CASES])
def test_a_domain_error_becomes_its_status_and_a_json_error(client, monkeypatch, error, status, kind, headers):
    @contextmanager
    def failing_chain(self):  # noqa: ANN001, ANN202
        raise error
        yield

    monkeypatch.setattr(Collection, "chain", failing_chain)
    response = client.post("/ask", json={"question": "What causes tides?"})
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["type"] == kind and body["message"]
    for name, value in headers.items():
        assert response.headers[name] == value
    if isinstance(error, ModelUnavailableError):
        assert body["setting"] == "RAG_RERANK__MODEL"
    if isinstance(error, BackendMismatchError):  # the advice names the setting and the command that fix it
        assert "RAG_INDEX__BACKEND=milvus" in body["message"] and "rag index migrate --to faiss" in body["message"]


def test_an_unforeseen_error_is_a_500_that_shows_no_internals(tmp_path, monkeypatch):
    @contextmanager
    def failing_chain(self):  # noqa: ANN001, ANN202
        raise RuntimeError("secret path /srv/keys/id_rsa")
        yield

    monkeypatch.setattr(Collection, "chain", failing_chain)
    # As a server answers: the test client would otherwise re-raise the error in the test.
    with TestClient(create_app(make_settings(tmp_path)), raise_server_exceptions=False) as client:
        response = client.post("/ask", json={"question": "What causes tides?"})
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error" and "id_rsa" not in response.text
