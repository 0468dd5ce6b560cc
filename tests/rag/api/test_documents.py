"""Uploads: every file type the ingest reads is accepted with its media types."""

from __future__ import annotations

import time

import pytest


def test_every_loadable_file_type_can_be_uploaded():
    from ingest.loaders import LOADERS
    from rag.api.actions import CONTENT_TYPES

    assert set(CONTENT_TYPES) == set(LOADERS)


@pytest.mark.slow
def test_a_watched_folder_is_answerable_while_serving(tmp_path):
    from fastapi.testclient import TestClient

    from rag.api.app import create_app
    from tests.rag.api.conftest import make_settings

    folder = tmp_path / "watched"
    folder.mkdir()
    (folder / "tides.md").write_text("# Tides\n\nOcean tides are caused mainly by the gravitational pull of the Moon.\n")
    settings = make_settings(tmp_path, ingest={"watch": [folder]})
    with TestClient(create_app(settings, warm_up="blocking")) as client:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and client.get("/documents").json()["total"] < 1:
            time.sleep(0.2)
        assert client.post("/ask", json={"question": "What causes ocean tides?", "mode": "extractive"}).json()[
            "citations"][0]["source"].endswith("tides.md")
        (folder / "bees.md").write_text("# Bees\n\nHoney bees point at flowers with a waggle dance.\n")
        while time.monotonic() < deadline and client.get("/documents").json()["total"] < 2:
            time.sleep(0.2)
        response = client.post("/ask", json={"question": "How do honey bees point at flowers?", "mode": "extractive"})
        assert response.json()["citations"][0]["source"].endswith("bees.md")


def test_search_returns_passages_with_spans_and_a_document_span_reads_back(loaded):
    found = loaded.post("/search", json={"query": "Who built the Bell Rock lighthouse?", "top_k": 2})
    assert found.status_code == 200, found.text
    top = found.json()["passages"][0]
    assert top["source"].endswith("lighthouse.md") and top["pages"] == []
    span = loaded.get(f"/documents/{top['doc_id']}", params={"start": top["start"], "end": top["end"]}).json()
    assert span["text"] == top["text"] and span["start"] == top["start"]
    outside = loaded.get(f"/documents/{top['doc_id']}", params={"start": 5, "end": 10**6})
    assert outside.status_code == 422 and "not within" in outside.json()["error"]["message"]
    assert loaded.post("/search", json={"query": ""}).status_code == 422
