"""The ray ingestion engine: the local engine's ledger, with reading, chunking and embedding on Ray actors.

Runs on a local Ray instance this module starts (2 CPUs). Each run starts its actors and loads the model
in them, so the tests keep to a few runs on the small corpus of `write_corpus`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from index.store import IndexStore, IndexWriter
from ingest.chunking import Chunker
from ingest.pipeline import IngestPipeline
from ingest.ray_engine import INSTALL_HINT, RayIngestPipeline, ray_session
from tests.ingest.test_loaders import make_pdf

pytestmark = [pytest.mark.integration, pytest.mark.slow]
pytest.importorskip("ray.data", reason="the ray engine needs the optional extra: pip install 'rag-service[ray]'")


@pytest.fixture(scope="module")
def ray_local():
    import ray

    ray.init(num_cpus=2, include_dashboard=False)
    yield ray
    ray.shutdown()


def ray_pipeline(index_dir: Path, embedder, chunker, **kwargs) -> RayIngestPipeline:
    kwargs.setdefault("embed_actors", 1)  # one model load per run: 2 cores are shared with other work
    kwargs.setdefault("batch_files", 2)
    return RayIngestPipeline(IndexStore(index_dir), embedder, chunker, **kwargs)


def local_run(index_dir: Path, embedder, chunker, corpus: Path):
    return IngestPipeline(IndexStore(index_dir), embedder, chunker).run([corpus])


def contents(index_dir: Path) -> dict[tuple[str, int], tuple[tuple, np.ndarray]]:
    """(source, seq) → ((start, end, text, heading), vector) of every chunk; checks there are no duplicates."""
    with IndexStore(index_dir).reader() as reader:
        rows = reader.store.conn.execute('SELECT chunk_id, doc_id, seq, start, "end", text, heading FROM chunks').fetchall()
        sources = {doc_id: src for src, doc_id in reader.store.sources().items()}
        assert sorted(reader.vectors.ids().tolist()) == sorted(r[0] for r in rows), "vectors and chunks differ"
        assert len(reader.bm25) == len(rows)
        ids, vectors = reader.store.all_chunk_vectors(reader.vectors.dimension)
    by_id = dict(zip(ids.tolist(), vectors, strict=True))
    state = {(sources[r[1]], r[2]): (tuple(r[3:]), by_id[r[0]]) for r in rows}
    assert len(state) == len(rows), "a (document, seq) appears twice"
    return state


def assert_same_index(actual: dict, expected: dict) -> None:
    assert {k: v[0] for k, v in actual.items()} == {k: v[0] for k, v in expected.items()}
    for key, (_, vector) in expected.items():
        np.testing.assert_allclose(actual[key][1], vector, atol=1e-4, err_msg=str(key))


def failed_names(report) -> dict[str, str]:
    return {Path(f.path).name: f.error for f in report.failed}


def no_embedding_here(*args, **kwargs):
    raise AssertionError("the driver embedded: the ray engine embeds on its actors")


def test_the_ray_engine_indexes_what_the_local_engine_does(tmp_path, corpus, embedder, chunker, ray_local, monkeypatch):
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 8)
    (corpus / "empty.md").write_text("")
    (corpus / "half-blank.pdf").write_bytes(make_pdf(["A page with text on it.", ""]))  # page 2: nothing to read
    local = local_run(tmp_path / "local", embedder, chunker, corpus)
    progress = []
    with monkeypatch.context() as patch:
        patch.setattr(embedder, "embed", no_embedding_here)
        remote = ray_pipeline(tmp_path / "ray", embedder, chunker, embed_actors=2, on_progress=progress.append).run([corpus])

    assert set(failed_names(remote)) == {"broken.pdf", "empty.md"}  # reported, and the rest went in
    assert failed_names(remote) == failed_names(local)
    assert [(Path(f.path).name, f.error) for f in remote.partial] == [
        (Path(f.path).name, f.error) for f in local.partial] == [
        ("half-blank.pdf", "page 2: no text layer and OCR found no text")]
    for name in ("files_seen", "ingested", "skipped_unchanged", "chunks_added", "chunks_deleted", "chunks_embedded"):
        assert getattr(remote, name) == getattr(local, name), name
    assert remote.ingested == 9 and remote.chunks_embedded == remote.chunks_added > 9
    assert [(p.files_done, p.files_total) for p in progress][-1] == (11, 11)
    assert progress[-1].chunks_done == remote.chunks_added
    assert_same_index(contents(tmp_path / "ray"), contents(tmp_path / "local"))
    with IndexStore(tmp_path / "ray").reader() as a, IndexStore(tmp_path / "local").reader() as b:
        assert a.fingerprint == b.fingerprint
        for source, doc_id in b.store.sources().items():
            assert a.document(doc_id) == b.document(doc_id), source
    assert ray_local.is_initialized()  # a connection the caller made is left alone


def test_rerun_skips_unchanged_files_and_replaces_a_changed_one(tmp_path, corpus, embedder, chunker, ray_local,
                                                               monkeypatch):
    pipeline = ray_pipeline(tmp_path / "idx", embedder, chunker)
    first = pipeline.run([corpus])
    before = contents(tmp_path / "idx")

    again = pipeline.run([corpus])
    assert again.skipped_unchanged == 8 and again.ingested == 0 and not again.failed
    assert again.chunks_added == again.chunks_deleted == again.chunks_embedded == 0
    assert_same_index(contents(tmp_path / "idx"), before)

    target = corpus / "bees.md"
    target.write_text(target.read_text() + "\n\nBumblebees can fly in colder weather than honey bees.\n")
    old_bees = sum(1 for source, _ in before if source == str(target))
    with monkeypatch.context() as patch:
        patch.setattr(embedder, "embed", no_embedding_here)
        changed = pipeline.run([corpus])
    assert changed.ingested == 1 and changed.skipped_unchanged == 7
    assert changed.chunks_deleted == old_bees
    assert 0 < changed.chunks_embedded < changed.chunks_added  # unchanged chunk texts came from the cache
    # Old chunks gone, none twice: the same index as a fresh local ingest of the edited corpus.
    local_run(tmp_path / "fresh", embedder, chunker, corpus)
    assert_same_index(contents(tmp_path / "idx"), contents(tmp_path / "fresh"))
    assert first.chunks_added - old_bees + changed.chunks_added == len(contents(tmp_path / "idx"))


def test_a_run_killed_after_a_commit_is_finished_by_a_rerun(tmp_path, corpus, embedder, chunker, ray_local, monkeypatch):
    real_commit = IndexWriter.commit
    commits: list[int] = []

    def commit_then_die(self: IndexWriter) -> None:
        real_commit(self)
        commits.append(1)
        raise KeyboardInterrupt("killed right after the first commit")

    monkeypatch.setattr(IndexWriter, "commit", commit_then_die)
    pipeline = ray_pipeline(tmp_path / "idx", embedder, chunker, commit_every_chunks=10)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run([corpus])
    monkeypatch.undo()
    assert commits == [1]
    partial = contents(tmp_path / "idx")
    committed = {source for source, _ in partial}
    assert 0 < len(committed) < 8

    rerun = pipeline.run([corpus])
    assert rerun.skipped_unchanged == len(committed) and rerun.ingested == 8 - len(committed)
    local_run(tmp_path / "fresh", embedder, chunker, corpus)
    assert_same_index(contents(tmp_path / "idx"), contents(tmp_path / "fresh"))


def test_a_failing_embedding_actor_fails_the_run_and_a_rerun_completes(tmp_path, corpus, embedder, chunker, ray_local):
    def failing_embedder():
        # Built on the worker: the class travels by value, as a test-local definition.
        from generators.text.embedder import SentenceEmbedder

        class FailsOnGlaciers(SentenceEmbedder):
            def embed(self, texts):
                if any("glaciers" in text.lower() for text in texts):
                    raise RuntimeError("injected embedding failure")
                return super().embed(texts)

        return FailsOnGlaciers()

    broken = ray_pipeline(tmp_path / "idx", embedder, chunker, commit_every_chunks=1, embedder_factory=failing_embedder)
    with pytest.raises(Exception, match="injected embedding failure"):
        broken.run([corpus])
    # Whatever was committed before the failure is whole: every document it holds has all its chunks.
    local_run(tmp_path / "fresh", embedder, chunker, corpus)
    fresh = contents(tmp_path / "fresh")
    if IndexStore(tmp_path / "idx").exists() and IndexStore(tmp_path / "idx").stats().chunks:
        partial = contents(tmp_path / "idx")
        committed = {source for source, _ in partial}
        assert not any("glaciers" in source for source in committed)
        assert_same_index(partial, {k: v for k, v in fresh.items() if k[0] in committed})

    rerun = ray_pipeline(tmp_path / "idx", embedder, chunker).run([corpus])
    assert rerun.ingested + rerun.skipped_unchanged == 8 and not rerun.failed
    assert_same_index(contents(tmp_path / "idx"), fresh)


def test_a_chunking_change_rechunks_stored_text_on_the_workers(tmp_path, corpus, embedder, chunker, ray_local):
    local_run(tmp_path / "idx", embedder, chunker, corpus)
    smaller = Chunker(chunker.count_tokens, chunk_tokens=32, overlap_tokens=4, tokenizer_name=chunker.tokenizer_name)
    report = ray_pipeline(tmp_path / "idx", embedder, smaller).run([corpus])
    assert report.documents_rechunked == 8 and report.skipped_unchanged == 8 and report.ingested == 0
    local_run(tmp_path / "fresh", embedder, smaller, corpus)
    assert_same_index(contents(tmp_path / "idx"), contents(tmp_path / "fresh"))


def test_cli_ingest_with_the_ray_engine_prints_the_json_contract(tmp_path, corpus, ray_local):
    # The driver writes to whatever backend is configured: Milvus (milvus-lite in the index dir) when installed.
    backend = "milvus" if all(importlib.util.find_spec(m) for m in ("pymilvus", "milvus_lite")) else "faiss"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "RAG_INDEX__BACKEND": backend,
        "RAG_EMBEDDER__BACKEND": "torch",  # no int8 graph to convert in this test
        "RAG_INGEST__RAY_ADDRESS": ray_local.get_runtime_context().gcs_address,  # join this module's Ray instance
    }
    rag = [sys.executable, "-c", "from rag.cli import app; app()"]
    command = [*rag, "ingest", str(corpus), "--index", str(tmp_path / "idx"), "--engine", "ray", "--embed-actors", "1",
               "--json"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)  # stdout is the JSON alone
    for key in ("files_seen", "ingested", "skipped_unchanged", "failed", "chunks_added", "chunks_deleted", "seconds"):
        assert key in report, key
    assert report["files_seen"] == report["ingested"] == 8 and report["failed"] == [] and report["chunks_added"] > 8
    stats = subprocess.run([*rag, "stats", "--index", str(tmp_path / "idx"), "--json"], env=env, capture_output=True,
                           text=True, timeout=300)
    assert stats.returncode == 0, stats.stderr[-3000:]
    assert json.loads(stats.stdout)["chunks"] == report["chunks_added"]
    assert json.loads(stats.stdout)["backend"] == backend
    # The CLI joined a Ray instance it did not start: it disconnected and left it running.
    assert ray_local.cluster_resources().get("CPU") == 2


# -- without a cluster ------------------------------------------------------------------------
class FakeRay:
    def __init__(self, initialized: bool) -> None:
        self.initialized = initialized
        self.calls: list[tuple] = []

    def is_initialized(self) -> bool:
        return self.initialized

    def init(self, **options) -> None:
        self.calls.append(("init", options))

    def shutdown(self) -> None:
        self.calls.append(("shutdown",))


@pytest.mark.parametrize(
    ("initialized", "address", "calls"),
    [
        (False, None, [("init", {"address": None, "include_dashboard": False}), ("shutdown",)]),
        (False, "auto", [("init", {"address": "auto"}), ("shutdown",)]),
        (True, "auto", []),
    ],
)
def test_ray_is_started_and_stopped_only_by_whoever_started_it(monkeypatch, initialized, address, calls):
    fake = FakeRay(initialized)
    monkeypatch.setattr("ingest.ray_engine.import_ray", lambda: fake)
    with ray_session(address) as ray:
        assert ray is fake
    assert fake.calls == calls


def test_missing_ray_names_the_install_command(monkeypatch, tmp_path, embedder):
    # In a fresh interpreter: this one may be running Ray, which must keep importing its own modules.
    hidden = "import sys; sys.modules['ray'] = None\nfrom ingest.ray_engine import import_ray\nimport_ray()"
    result = subprocess.run([sys.executable, "-c", hidden], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "RayUnavailableError" in result.stderr and INSTALL_HINT in result.stderr

    from rag.components import build_ingest_pipeline
    from rag.settings import Settings

    settings = Settings(ingest={"engine": "ray", "ray_address": "auto", "ray_embed_actors": 3})
    monkeypatch.setattr("ingest.ray_engine.ray_installed", lambda: False)
    with pytest.raises(ValueError, match="RAG_INGEST__ENGINE=ray") as failure:
        build_ingest_pipeline(settings, IndexStore(tmp_path / "idx"), embedder=embedder)
    assert INSTALL_HINT in str(failure.value)
    monkeypatch.setattr("ingest.ray_engine.ray_installed", lambda: True)
    pipeline = build_ingest_pipeline(settings, IndexStore(tmp_path / "idx"), embedder=embedder)
    assert isinstance(pipeline, RayIngestPipeline)
    assert (pipeline.address, pipeline.embed_actors) == ("auto", 3)
