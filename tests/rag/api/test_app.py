"""The API in process: contracts, errors as JSON 4xx, documents, collections, keys, health and metrics."""

from __future__ import annotations

import threading

import json

import pytest
from fastapi.testclient import TestClient

from rag.api.app import create_app
from tests.rag.api.conftest import BEES, TIDES, make_settings, upload

ASK_KEYS = {"answer", "abstained", "confidence", "citations", "timings_ms"}


def test_ask_returns_the_cli_contract_with_exact_spans(loaded):
    response = loaded.post("/ask", json={"question": "What causes ocean tides?"})
    assert response.status_code == 200 and response.headers["x-request-id"]
    body = response.json()
    assert ASK_KEYS <= set(body) and not body["abstained"]
    citation = body["citations"][0]
    assert citation["source"].endswith("tides.md")
    text = open(citation["source"], encoding="utf-8").read()
    assert text[citation["start"] : citation["end"]] == citation["text"]
    assert {"retrieve", "rerank", "read", "total"} <= set(body["timings_ms"])


def test_unrelated_question_abstains(loaded):
    body = loaded.post("/ask", json={"question": "What is the boiling point of mercury in kelvin?"}).json()
    assert body["abstained"] and body["answer"] == "Not found in the documents."


@pytest.mark.parametrize("payload, fragment", [
    ({"question": ""}, "question"),
    ({"question": "x" * 3000}, "question"),
    ({"question": "What?", "mode": "poetry"}, "mode"),
    ({"question": "What?", "top_k": 0}, "top_k"),
    ({"question": "What?", "collection": "../etc"}, "collection"),
    ({"question": "What?", "unknown": 1}, "unknown"),
    ({}, "question"),
])
def test_malformed_ask_requests_are_json_4xx(loaded, payload, fragment):
    response = loaded.post("/ask", json=payload)
    assert response.status_code == 422
    assert fragment in response.json()["error"]["message"]


def test_broken_json_and_wrong_methods_are_json_4xx(loaded):
    assert loaded.post("/ask", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422
    wrong = loaded.get("/ask")
    assert wrong.status_code == 405 and "error" in wrong.json()
    missing = loaded.get("/nowhere")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"


def test_empty_collection_and_unknown_collection_are_404(client):
    assert client.post("/ask", json={"question": "What causes tides?"}).status_code == 404
    response = client.post("/ask", json={"question": "What causes tides?", "collection": "nope"})
    assert response.status_code == 404 and "nope" in response.json()["error"]["message"]


def test_documents_are_listed_paged_and_deleted(loaded):
    page = loaded.get("/documents", params={"limit": 2}).json()
    assert page["total"] == 3 and len(page["documents"]) == 2
    rest = loaded.get("/documents", params={"offset": 2, "limit": 2}).json()["documents"]
    assert len(rest) == 1
    bees = next(d for d in page["documents"] + rest if d["source"].endswith("bees.md"))
    assert loaded.delete(f"/documents/{bees['doc_id']}").status_code == 204
    assert loaded.get("/documents").json()["total"] == 2
    assert loaded.delete(f"/documents/{bees['doc_id']}").status_code == 404
    answer = loaded.post("/ask", json={"question": "How do honey bees communicate the direction of flowers?"}).json()
    assert not any(c["source"].endswith("bees.md") for c in answer["citations"])


def test_uploads_are_checked_and_never_use_the_client_path(tmp_path):
    settings = make_settings(tmp_path, api={"max_upload_mb": 0.001})
    with TestClient(create_app(settings, warm_up="blocking")) as client:
        big = client.post("/documents", files={"file": ("big.md", b"a" * 5000, "text/markdown")})
        assert big.status_code == 413
        exe = client.post("/documents", files={"file": ("tool.exe", b"MZ", "application/octet-stream")})
        assert exe.status_code == 415
        mismatch = client.post("/documents", files={"file": ("notes.md", TIDES, "image/png")})
        assert mismatch.status_code == 415
        empty = client.post("/documents", files={"file": ("empty.md", b"", "text/markdown")})
        assert empty.status_code == 422
        corrupt = client.post("/documents", files={"file": ("broken.pdf", b"%PDF-1.7 garbage", "application/pdf")})
        assert corrupt.status_code == 422 and "broken.pdf" in corrupt.json()["error"]["message"]
        sneaky = upload(client, "../../outside/../evil.md", TIDES)
        assert sneaky["file"] == "evil.md"
        stored = client.get("/documents").json()["documents"]
        assert [d["source"] for d in stored] == [str(next((tmp_path / "index-uploads").rglob("evil.md")))]
        assert not (tmp_path / "outside").exists() and not (tmp_path.parent / "evil.md").exists()


def test_collections_are_separate_indexes(client):
    upload(client, "tides.md", TIDES, collection="oceans")
    upload(client, "bees.md", BEES)
    oceans = client.post("/ask", json={"question": "How do honey bees communicate the direction of flowers?",
                                       "collection": "oceans"}).json()
    assert all(c["source"].endswith("tides.md") for c in oceans["citations"])
    default = client.get("/documents").json()
    assert [d["source"].rsplit("/", 1)[-1] for d in default["documents"]] == ["bees.md"]
    assert set(client.get("/healthz").json()["collections"]) == {"default", "oceans"}


def test_api_keys_guard_requests_and_limit_collections(tmp_path):
    settings = make_settings(tmp_path, api={"keys": {"admin-key": ["*"], "oceans-key": ["oceans"]}})
    with TestClient(create_app(settings, warm_up="blocking")) as client:
        anonymous = client.post("/ask", json={"question": "What causes tides?"})
        assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
        wrong = client.get("/v1/models", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        admin = {"Authorization": "Bearer admin-key"}
        upload(client, "tides.md", TIDES, collection="oceans", headers=admin)
        upload(client, "bees.md", BEES, headers=admin)
        oceans = {"X-API-Key": "oceans-key"}
        assert client.post("/ask", json={"question": "What causes tides?", "collection": "oceans"},
                           headers=oceans).status_code == 200
        denied = client.post("/ask", json={"question": "What causes tides?"}, headers=oceans)
        assert denied.status_code == 403 and denied.json()["error"]["type"] == "permission_error"
        assert client.get("/healthz").status_code == 200  # operations stay open to probes


def test_healthz_reports_stats_and_metrics_count_requests_and_stages(loaded, caplog):
    health = loaded.get("/healthz").json()
    assert health["ready"] and health["collections"]["default"]["documents"] == 3
    with caplog.at_level("INFO", logger="rag.api.services"):
        notes = loaded.post("/ask", json={"question": "What causes ocean tides?"}).json()["notes"]
    loaded.post("/ask", json={"question": ""})
    text = loaded.get("/metrics").text
    assert 'rag_http_requests_total{method="POST",route="/ask",status="200"}' in text
    assert 'rag_http_errors_total{route="/ask",status="422"}' in text
    assert 'rag_chain_stage_seconds_count{stage="retrieve"}' in text
    assert 'rag_answers_total{mode="extractive",outcome="answered"}' in text
    # Operator notes (here: no extractive QA model on this machine) are counted and logged.
    assert notes and f'rag_answer_notes_total{{mode="extractive"}} {float(len(notes))}' in text
    assert any(notes[0] in record.getMessage() for record in caplog.records)


def test_health_is_503_until_the_models_are_loaded(tmp_path, monkeypatch):
    from rag.api.services import Services

    loading = threading.Event()
    warm_up = Services.warm_up
    monkeypatch.setattr(Services, "warm_up", lambda self: (loading.wait(60), warm_up(self)))
    app = create_app(make_settings(tmp_path), warm_up="background")
    with TestClient(app) as client:
        starting = client.get("/healthz")
        assert starting.status_code == 503 and starting.json()["status"] == "starting"
        loading.set()
        assert app.state.services.ready.wait(120)
        assert client.get("/healthz").status_code == 200


def _chat(client, messages, **extra):
    return client.post("/v1/chat/completions", json={"model": "extractive", "messages": messages, **extra})


def test_chat_completion_carries_numbered_citations(loaded):
    body = _chat(loaded, [{"role": "user", "content": "What causes ocean tides?"}]).json()
    assert body["object"] == "chat.completion" and body["choices"][0]["message"]["role"] == "assistant"
    content = body["choices"][0]["message"]["content"]
    assert "Moon" in content and content.endswith("[1]")
    assert body["citations"][0]["index"] == 1 and body["citations"][0]["source"].endswith("tides.md")
    assert body["rag"]["abstained"] is False and body["rag"]["collection"] == "default"


def test_follow_up_questions_are_retrieved_with_the_earlier_turn(loaded):
    messages = [
        {"role": "user", "content": "Tell me about the Bell Rock lighthouse."},
        {"role": "assistant", "content": "It stands off the coast of Angus. [1]"},
        {"role": "user", "content": "Who built it?"},
    ]
    body = _chat(loaded, messages).json()
    assert body["rag"]["retrieval_query"] == "Tell me about the Bell Rock lighthouse. Who built it?"
    assert body["citations"][0]["source"].endswith("lighthouse.md")
    assert "Stevenson" in body["choices"][0]["message"]["content"]  # the gate found the topic, the reader the answer
    alone = _chat(loaded, [{"role": "user", "content": "What causes ocean tides?"}]).json()
    assert alone["rag"]["retrieval_query"] == "What causes ocean tides?"


def test_streamed_chat_is_server_sent_events_ending_with_citations_and_done(loaded):
    with loaded.stream("POST", "/v1/chat/completions", json={
            "model": "extractive", "stream": True,
            "messages": [{"role": "user", "content": "What causes ocean tides?"}]}) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        events = [line[len("data: "):] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert "Moon" in text and text.endswith("[1]")
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["citations"][0]["index"] == 1


@pytest.mark.parametrize("payload, status", [
    ({"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}, 404),
    ({"model": "extractive", "messages": []}, 422),
    ({"model": "extractive", "messages": [{"role": "assistant", "content": "hi"}]}, 422),
    ({"model": "extractive", "messages": [{"role": "wizard", "content": "hi"}]}, 422),
    ({"model": "extractive", "messages": [{"role": "user", "content": "hi"}], "temperature": 5}, 422),
    ({"messages": [{"role": "user", "content": "hi"}]}, 422),
])
def test_malformed_chat_requests_are_json_4xx(loaded, payload, status):
    response = loaded.post("/v1/chat/completions", json=payload)
    assert response.status_code == status and "message" in response.json()["error"]


def test_models_lists_the_readers(loaded):
    ids = [m["id"] for m in loaded.get("/v1/models").json()["data"]]
    assert ids[:2] == ["extractive", "generative"]  # tests default to extractive (RAG_READER__DEFAULT_MODE, tests/conftest.py)


def test_models_list_the_default_modes_reader_first(tmp_path):
    from rag.api.routers.chat import available_models

    assert list(available_models(make_settings(tmp_path, reader={"default_mode": "generative"})))[0] == "generative"
    assert list(available_models(make_settings(tmp_path, reader={"default_mode": "extractive"})))[0] == "extractive"


def test_classify_follows_the_contract(client):
    response = client.post("/v1/classify", json={"texts": ["I love it, wonderful!", "Awful, I hate it."],
                                                 "labels": ["positive", "negative"]})
    assert response.status_code == 200
    body = response.json()
    assert [r["label"] for r in body["results"]] == ["positive", "negative"]
    assert body["counts"] == {"positive": 1, "negative": 1} and body["method"] == "zero-shot"
    assert set(body["results"][0]) == {"text", "label", "score"}
    bad = client.post("/v1/classify", json={"texts": ["x"], "labels": ["only"]})
    assert bad.status_code == 422


def test_summarize_returns_sentences_with_offsets(client):
    text = "Tides rise twice a day. The Moon pulls the oceans. Bees dance. The Sun adds a smaller pull on the tides."
    body = client.post("/v1/summarize", json={"text": text, "max_sentences": 2}).json()
    assert body["method"] == "extractive" and len(body["sentences"]) == 2
    assert all(text[s["start"] : s["end"]] == s["text"] for s in body["sentences"])
    assert client.post("/v1/summarize", json={"text": ""}).status_code == 422


def test_span_answers_carry_their_citation_marker(tmp_path, tiny_qa_model_dir):
    settings = make_settings(tmp_path, reader={"model": str(tiny_qa_model_dir), "widen_below": 0.0})
    with TestClient(create_app(settings, warm_up="blocking")) as client:
        upload(client, "tides.md", TIDES)
        body = _chat(client, [{"role": "user", "content": "What causes ocean tides?"}]).json()
        assert body["rag"]["answer_type"] == "span"
        span = body["citations"][0]
        assert body["choices"][0]["message"]["content"] == f"{span['text']} [1]"
        text = open(span["source"], encoding="utf-8").read()
        assert text[span["start"] : span["end"]] == span["text"]


def test_torch_threads_are_set_when_serving_starts(tmp_path):
    import torch

    before = torch.get_num_threads()
    try:
        app = create_app(make_settings(tmp_path, runtime={"torch_threads": 1}), warm_up="none")
        assert torch.get_num_threads() == before  # nothing happens when the app is only built
        with TestClient(app) as client:
            # The serving loop's thread (whose request worker threads inherit its setting) uses 1 thread.
            assert client.portal.call(torch.get_num_threads) == 1
    finally:
        torch.set_num_threads(before)


def test_an_index_kept_in_another_vector_backend_is_a_409_naming_the_fix(tmp_path):
    with TestClient(create_app(make_settings(tmp_path), warm_up="blocking")) as faiss_client:
        upload(faiss_client, "tides.md", TIDES)
    with TestClient(create_app(make_settings(tmp_path, index={"backend": "milvus"}), warm_up="blocking")) as milvus_client:
        response = milvus_client.post("/ask", json={"question": "What causes ocean tides?"})
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["type"] == "conflict_error" and "faiss" in error["message"] and "rag index migrate" in error["message"]


def test_a_vector_database_that_cannot_be_reached_is_a_503_with_retry_after(tmp_path):
    pytest.importorskip("milvus_lite")
    not_a_database = tmp_path / "old-milvus.db"
    not_a_database.write_bytes(b"a milvus-lite 2 file, not the directory milvus-lite 3 keeps")
    settings = make_settings(tmp_path, index={"backend": "milvus"}, milvus={"uri": str(not_a_database)})
    with TestClient(create_app(settings, warm_up="blocking")) as client:
        response = client.post("/documents", files={"file": ("tides.md", TIDES, "text/markdown")})
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    error = response.json()["error"]
    assert error["type"] == "service_unavailable" and str(not_a_database) in error["message"]
