"""Watched folders: added, changed, moved and deleted files reach the index; the index itself is not watched."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from index.store import IndexStore
from ingest.pipeline import IngestPipeline
from ingest.watch import relevant_change, watch_folders


def test_changes_inside_the_index_or_hidden_folders_do_not_trigger_a_sync(tmp_path):
    root, index = tmp_path / "docs", tmp_path / "docs" / "idx"
    assert relevant_change(str(root / "a.md"), [root], [index])
    assert relevant_change(str(root / "sub" / "b.pdf"), [root], [index])
    assert not relevant_change(str(index / "docstore.sqlite"), [root], [index])
    assert not relevant_change(str(root / ".git" / "HEAD"), [root], [index])
    assert not relevant_change(str(tmp_path / "elsewhere.md"), [root], [index])
    hidden_root = tmp_path / ".hidden" / "docs"  # a watched folder may itself sit under a hidden one
    assert relevant_change(str(hidden_root / "a.md"), [hidden_root], [])


def sources(index_dir: Path) -> dict[str, str]:
    """Source file name → its stored text."""
    with IndexStore(index_dir).reader() as reader:
        return {Path(source).name: reader.document(doc_id).text for source, doc_id in reader.store.sources().items()}


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("the watched index did not catch up")


@pytest.mark.slow
def test_a_watched_folder_stays_in_step_with_its_files(tmp_path, embedder, chunker):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "bees.md").write_text("# Bees\n\nBees dance to point at flowers.\n")
    index_dir = folder / "idx"  # inside the watched folder: its own writes must not loop
    pipeline = IngestPipeline(IndexStore(index_dir), embedder, chunker)
    reports = []
    stop = threading.Event()
    watcher = threading.Thread(target=watch_folders, daemon=True,
                               args=([folder], lambda: pipeline.run([folder], prune=True)),
                               kwargs={"ignore": [index_dir], "debounce_ms": 200, "stop": stop,
                                       "on_report": reports.append})
    watcher.start()
    try:
        wait_for(lambda: reports and "bees.md" in sources(index_dir))
        (folder / "tides.md").write_text("# Tides\n\nTides follow the Moon.\n")  # added
        wait_for(lambda: "tides.md" in sources(index_dir))
        (folder / "bees.md").write_text("# Bees\n\nBees make honey from nectar.\n")  # changed
        wait_for(lambda: "honey" in sources(index_dir).get("bees.md", ""))
        before_move = len(reports)
        (folder / "tides.md").rename(folder / "moon.md")  # moved
        wait_for(lambda: set(sources(index_dir)) == {"bees.md", "moon.md"})
        assert sum(r.chunks_embedded for r in reports[before_move:]) == 0  # its chunks' vectors were kept
        (folder / "bees.md").unlink()  # deleted
        wait_for(lambda: set(sources(index_dir)) == {"moon.md"})
        # The commit is visible before the sync returns its report (and the move's report also deleted a
        # document): wait for the report of the sync that saw the one file left.
        wait_for(lambda: reports[-1].files_seen == 1)
        assert reports[-1].documents_deleted == 1
        settled = len(reports)
        time.sleep(1.0)
        assert len(reports) == settled, "the index's own writes started more syncs"
    finally:
        stop.set()
        watcher.join(timeout=30)
    assert not watcher.is_alive()
