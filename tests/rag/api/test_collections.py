"""Snapshots: a request keeps the index it started with; new requests see a commit once it is done."""

from __future__ import annotations

import pytest

from index.backends import FaissBackend
from rag.api.actions import Caller
from rag.api.collections import Collections, UnknownCollectionError, safe_file_name
from rag.api.routers.chat import retrieval_query
from rag.api.schemas import ChatMessage
from rag.components import build_chain, build_ingest_pipeline
from rag.settings import Settings
from tests.rag.api.conftest import BEES, TIDES, make_settings


@pytest.fixture
def collections(tmp_path, embedder):
    settings: Settings = make_settings(tmp_path)
    return Collections(settings.index.dir, settings.index.collections_dir, backend=FaissBackend(),
                       make_pipeline=lambda store: build_ingest_pipeline(settings, store, embedder=embedder),
                       make_chain=lambda reader: build_chain(settings, reader, embedder))


def test_a_request_keeps_its_snapshot_while_an_ingest_commits(collections):
    default = collections.get("default")
    default.add("tides.md", TIDES)
    with default.chain() as before:
        default.add("bees.md", BEES)  # commits and swaps while the request above is still running
        old_total, _ = before.retriever.reader.documents()
        assert old_total == 1
        with default.chain() as after:
            assert after is not before and after.retriever.reader.documents()[0] == 2
        # the old snapshot stays open until its request ends
        assert before.retriever.reader.search_bm25("tides", 5)
    assert default.documents(0, 10, Caller(None, None))[0] == 2


def test_collection_names_are_checked_and_unknown_ones_are_not_created(collections):
    with pytest.raises(UnknownCollectionError, match="invalid collection name"):
        collections.get("../escape")
    with pytest.raises(UnknownCollectionError, match="no collection"):
        collections.get("nothing-here")
    collections.get("fresh", create=True).add("tides.md", TIDES)
    assert collections.names() == ["default", "fresh"]


@pytest.mark.parametrize("name, expected", [
    ("notes.md", "notes.md"),
    ("../../etc/passwd.md", "passwd.md"),
    ("C:\\Users\\me\\report.pdf", "report.pdf"),
    (".hidden.md", "hidden.md"),
    ("spaces and ümlauts.txt", "spaces_and_mlauts.txt"),
    ("", "upload"),
])
def test_upload_names_are_derived_never_taken_as_paths(name, expected):
    folder, base = safe_file_name(name, b"content").split("/")
    assert len(folder) == 16 and base == expected


def _messages(*turns: tuple[str, str]) -> list[ChatMessage]:
    return [ChatMessage(role=role, content=content) for role, content in turns]


def test_follow_ups_are_searched_with_the_previous_user_turn():
    question, query, history = retrieval_query(_messages(
        ("system", "Be brief."), ("user", "Tell me about the Bell Rock lighthouse."),
        ("assistant", "It stands off Angus."), ("user", "Who built it?")))
    assert question == "Who built it?" and query == "Tell me about the Bell Rock lighthouse. Who built it?"
    assert [m["role"] for m in history] == ["user", "assistant"]
    standalone = retrieval_query(_messages(("user", "Tides?"), ("assistant", "The Moon."),
                                           ("user", "How do honey bees communicate the direction of flowers?")))
    assert standalone[1] == "How do honey bees communicate the direction of flowers?"
    chinese = retrieval_query(_messages(("user", "贝尔礁灯塔在哪里？"), ("assistant", "安格斯海岸外。"), ("user", "它是谁建造的？")))
    assert chinese[1] == "贝尔礁灯塔在哪里？ 它是谁建造的？"
