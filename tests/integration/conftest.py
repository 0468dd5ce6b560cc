"""Servers the integration tests share: the API served by `rag serve` on loopback, with three documents."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.integration.servers import free_port, running
from tests.rag.api.conftest import BEES, LIGHTHOUSE, TIDES


@contextmanager
def serving(folder: Path, *, upload_key: str | None = None, **settings: str) -> Iterator[str]:
    """`rag serve` on a free loopback port over `folder`, holding the three test documents (uploaded with
    `upload_key` when the settings require keys)."""
    port = free_port()
    # The sentence reader answers: these tests check clients and plumbing, not a reader's quality.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_READER__MODEL": "no-such-org/no-such-reader",
           "RAG_INDEX__DIR": str(folder / "index"),
           "RAG_INDEX__COLLECTIONS_DIR": str(folder / "collections"), "RAG_API__KEYS_FILE": str(folder / "keys.json"),
           "RAG_INGEST__CHUNK_TOKENS": "64", "RAG_INGEST__CHUNK_OVERLAP": "8",
           **settings}
    rag = shutil.which("rag", path=os.path.dirname(sys.executable)) or "rag"
    command = [rag, "serve", "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with running(command, f"{url}/healthz", folder / "server.log", startup_seconds=180, env=env):
        for name, content in (("tides.md", TIDES), ("bees.md", BEES), ("lighthouse.md", LIGHTHOUSE)):
            response = httpx.post(f"{url}/documents", files={"file": (name, content, "text/markdown")}, timeout=120,
                                  headers={"Authorization": f"Bearer {upload_key}"} if upload_key else {})
            assert response.status_code == 201, response.text
        yield url


@pytest.fixture(scope="session")
def api_url(tmp_path_factory, tiny_image_model_dir, tiny_caption_model_dir, tiny_video_model_dir):
    # Tiny random media models: the page and the clients see images, captions and videos (plumbing only).
    with serving(tmp_path_factory.mktemp("api-server"), RAG_MEDIA__IMAGE_MODEL=str(tiny_image_model_dir),
                 RAG_MEDIA__IMAGE_STEPS="1", RAG_MEDIA__MAX_IMAGE_SIDE="64", RAG_MEDIA__CAPTION_MODEL=str(tiny_caption_model_dir),
                 RAG_MEDIA__VIDEO_MODEL=str(tiny_video_model_dir), RAG_MEDIA__VIDEO_STEPS="1", RAG_MEDIA__VIDEO_FRAMES="2") as url:
        yield url
