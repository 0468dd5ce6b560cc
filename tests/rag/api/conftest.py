"""An app on temporary folders, with the real offline embedder; documents go in through the API itself."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from rag.api.app import create_app
from rag.settings import Settings

TIDES = b"# Tides\n\nOcean tides are caused mainly by the gravitational pull of the Moon.\n"
BEES = b"# Bees\n\nHoney bees communicate the direction of flowers with a waggle dance.\n"
LIGHTHOUSE = (b"# Lighthouse\n\nThe Bell Rock lighthouse stands off the coast of Angus. "
              b"The lighthouse was built by Robert Stevenson between 1807 and 1810.\n")


def make_settings(tmp_path, **sections) -> Settings:
    """Settings on temporary folders with no reader or reranker model; `sections` override a section's fields."""
    values = {"index": {"dir": tmp_path / "index", "collections_dir": tmp_path / "collections"},
              "ingest": {"chunk_tokens": 64, "chunk_overlap": 8},
              "reader": {"model": "no-such-org/no-such-reader"}, "rerank": {"model": "no-such-org/no-such-reranker"},
              "api": {"keys_file": tmp_path / "keys.json"}}
    for section, fields in sections.items():
        values[section] = {**values.get(section, {}), **fields}
    return Settings(**values)


def upload(client: TestClient, name: str, content: bytes, collection: str = "default", headers=None):
    response = client.post("/documents", files={"file": (name, content, "text/markdown")},
                           data={"collection": collection}, headers=headers or {})
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def client(tmp_path):
    with TestClient(create_app(make_settings(tmp_path), warm_up="blocking")) as test_client:
        yield test_client


@pytest.fixture
def loaded(client):
    for name, content in (("tides.md", TIDES), ("bees.md", BEES), ("lighthouse.md", LIGHTHOUSE)):
        upload(client, name, content)
    return client
