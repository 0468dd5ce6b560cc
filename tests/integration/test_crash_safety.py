"""kill -9 a real `rag ingest` at random moments: the last commit stays readable, a rerun completes exactly."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from index.store import IndexStore
from tests.conftest import write_corpus

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def big_corpus(folder: Path) -> Path:
    topics = {f"topic{i:03d}": f"Subject {i} concerns item {i * 7} and property {i * 13} in depth." for i in range(100)}
    write_corpus(folder, topics, repeat=8)
    return folder


def ingest_command(corpus: Path, index_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "rag.cli", "ingest", str(corpus), "--index", str(index_dir), "--json", *extra]


def ingest_env() -> dict[str, str]:
    # Small chunks and frequent commits so that kills land between and inside commits.
    return {**os.environ, "RAG_INGEST__CHUNK_TOKENS": "48", "RAG_INGEST__CHUNK_OVERLAP": "8", "RAG_INGEST__COMMIT_EVERY_CHUNKS": "30",
            "RAG_INGEST__BATCH_CHUNKS": "16",
            "HF_HUB_OFFLINE": "1"}


def snapshot(index_dir: Path) -> dict:
    """The index's logical content, after checking it is internally consistent."""
    with IndexStore(index_dir).reader() as reader:
        conn = reader.store.conn
        rows = conn.execute('SELECT chunk_id, doc_id, seq, start, "end", text FROM chunks').fetchall()
        ids = sorted(r[0] for r in rows)
        vector_ids = sorted(reader.vectors.ids().tolist()) if reader.vectors is not None else []
        assert vector_ids == ids, "vector index and docstore disagree"
        assert len(reader.bm25) == len(rows)
        assert conn.execute("SELECT COUNT(*) FROM chunks WHERE doc_id NOT IN (SELECT doc_id FROM documents)").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM documents WHERE doc_id NOT IN (SELECT doc_id FROM chunks)").fetchone()[0] == 0
        texts = {d: reader.store.document(d).text for d in {r[1] for r in rows}}
        for _, doc_id, _, start, end, text in rows:
            assert texts[doc_id][start:end] == text
        keys = [(r[1], r[2]) for r in rows]
        assert len(keys) == len(set(keys)), "duplicate chunks"
        return {(r[1], r[2]): (r[3], r[4], r[5]) for r in rows}


def committed_generation(index_dir: Path) -> int:
    try:
        with sqlite3.connect(f"file:{index_dir / 'docstore.sqlite'}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
    except sqlite3.Error:
        return 0
    return int(row[0]) if row else 0


def test_kill_9_at_random_moments_then_rerun_matches_an_uninterrupted_run(tmp_path):
    corpus = big_corpus(tmp_path / "corpus")
    reference = tmp_path / "reference"
    # A first ingest on a fresh machine also converts the embedder once (cached afterwards); do that
    # before the timed run, or the timings learned below would not match the runs that are killed.
    warm_up = write_corpus(tmp_path / "warm-up", {"one": "A single warm-up page."}, repeat=1)[0].parent
    subprocess.run(ingest_command(warm_up, tmp_path / "warm-up-index"), env=ingest_env(), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    # The uninterrupted run, watched to learn when commits happen.
    started = time.perf_counter()
    process = subprocess.Popen(ingest_command(corpus, reference), env=ingest_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first_commit = last_commit = None
    generation = 0
    while process.poll() is None:
        now = committed_generation(reference)
        if now != generation:
            generation, last_commit = now, time.perf_counter() - started
            first_commit = first_commit or last_commit
        time.sleep(0.02)
    assert process.returncode == 0, process.stderr.read()
    expected = snapshot(reference)
    assert len(expected) > 200 and first_commit is not None and generation > 3

    crashed = tmp_path / "crashed"
    rng = random.Random(1234)
    # One kill while the model loads, the rest spread over the stretch where commits happen.
    moments = [rng.uniform(0.5, first_commit)] + [rng.uniform(first_commit - 0.3, last_commit) for _ in range(5)]
    committed_at_kill = []
    for moment in moments:
        process = subprocess.Popen(ingest_command(corpus, crashed), env=ingest_env(),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(moment)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        if IndexStore(crashed).exists():
            committed_at_kill.append(len(snapshot(crashed)))  # readable and consistent after every kill
    assert any(0 < n < len(expected) for n in committed_at_kill), f"no kill landed mid-ingest: {committed_at_kill}"

    rerun = subprocess.run(ingest_command(corpus, crashed), env=ingest_env(), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert snapshot(crashed) == expected
    print("chunks committed at each kill:", committed_at_kill, "of", len(expected))


def test_second_ingest_fails_clearly_while_the_index_is_locked(tmp_path):
    corpus = write_corpus(tmp_path / "corpus") and tmp_path / "corpus"
    index_dir = tmp_path / "idx"
    with IndexStore(index_dir).writer():
        blocked = subprocess.run(ingest_command(corpus, index_dir, "--lock-timeout", "1"), env=ingest_env(),
                                 capture_output=True, text=True, timeout=300)
    assert blocked.returncode == 2
    assert "Another ingest is writing" in blocked.stderr and "Traceback" not in blocked.stderr


def test_second_ingest_waits_for_the_lock_and_then_completes(tmp_path):
    corpus = write_corpus(tmp_path / "corpus") and tmp_path / "corpus"
    index_dir = tmp_path / "idx"
    writer = IndexStore(index_dir).writer()
    writer.__enter__()
    try:
        waiting = subprocess.Popen(ingest_command(corpus, index_dir, "--lock-timeout", "120"), env=ingest_env(),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(4)
        assert waiting.poll() is None, "the second ingest should be waiting for the lock"
    finally:
        writer.__exit__(None, None, None)
    out, errors = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, errors
    assert '"ingested": 8' in out
