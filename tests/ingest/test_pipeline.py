"""The ingestion ledger: incremental, idempotent, prune, fingerprint changes, bad files in a batch."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from index.store import IndexStore
from ingest.chunking import Chunker, indexed_text
from ingest.pipeline import IngestPipeline
from tests.conftest import write_corpus
from tests.ingest.test_loaders import make_pdf


def make_pipeline(index_dir: Path, embedder, chunker, **kwargs) -> IngestPipeline:
    return IngestPipeline(IndexStore(index_dir), embedder, chunker, **kwargs)


def index_state(index_dir: Path) -> dict[tuple[str, int], tuple[int, int, str]]:
    """(source, seq) → (start, end, text) of every chunk, checked against the vectors."""
    with IndexStore(index_dir).reader() as reader:
        rows = reader.store.conn.execute('SELECT chunk_id, doc_id, seq, start, "end", text FROM chunks').fetchall()
        sources = {doc_id: src for src, doc_id in reader.store.sources().items()}
        assert sorted(reader.vectors.ids().tolist()) == sorted(r[0] for r in rows), "vectors and chunks differ"
        assert len(reader.bm25) == len(rows)
        return {(sources[r[1]], r[2]): (r[3], r[4], r[5]) for r in rows}


def test_first_run_indexes_every_file_with_exact_offsets(tmp_path, corpus, embedder, chunker):
    report = make_pipeline(tmp_path / "idx", embedder, chunker).run([corpus])
    assert report.files_seen == 8 and report.ingested == 8 and not report.failed
    assert report.chunks_added > 8
    with IndexStore(tmp_path / "idx").reader() as reader:
        assert reader.stats().chunks == report.chunks_added
        chunks = reader.chunks(list(range(1, report.chunks_added + 1)))
        for chunk in chunks.values():
            doc = reader.store.document(chunk.doc_id)
            assert doc.text[chunk.start : chunk.end] == chunk.text
            # Every chunk sits under its file's h1, e.g. "Bees > Overview".
            assert chunk.heading.split(" > ")[0] == Path(chunk.source).stem.title()


def test_rerun_on_unchanged_folder_embeds_nothing(tmp_path, corpus, embedder, chunker):
    pipeline = make_pipeline(tmp_path / "idx", embedder, chunker)
    first = pipeline.run([corpus])
    before = index_state(tmp_path / "idx")
    started = time.perf_counter()
    second = pipeline.run([corpus])
    assert second.skipped_unchanged == 8 and second.ingested == 0
    assert second.chunks_added == second.chunks_deleted == second.chunks_embedded == 0
    assert index_state(tmp_path / "idx") == before
    assert first.chunks_embedded > 0 and time.perf_counter() - started >= 0


def test_changed_file_replaces_only_its_own_chunks(tmp_path, corpus, embedder, chunker):
    pipeline = make_pipeline(tmp_path / "idx", embedder, chunker)
    pipeline.run([corpus])
    with IndexStore(tmp_path / "idx").reader() as reader:
        ids_before = dict(reader.store.conn.execute("SELECT chunk_id, doc_id FROM chunks").fetchall())
    target = corpus / "bees.md"
    target.write_text(target.read_text() + "\n\nBumblebees can fly in colder weather than honey bees.\n")
    report = pipeline.run([corpus])
    assert report.ingested == 1 and report.skipped_unchanged == 7
    # Unchanged chunk texts of the edited file come from the vector cache.
    assert 0 < report.chunks_embedded < report.chunks_added
    with IndexStore(tmp_path / "idx").reader() as reader:
        ids_after = dict(reader.store.conn.execute("SELECT chunk_id, doc_id FROM chunks").fetchall())
        bees_id = reader.store.sources()[str(target)]
        hits = reader.search_bm25("bumblebees colder weather", 3)
        assert reader.chunks([hits[0][0]])[hits[0][0]].doc_id == bees_id
    untouched = {k: v for k, v in ids_before.items() if v != bees_id}
    assert {k: v for k, v in ids_after.items() if v != bees_id} == untouched


def test_prune_removes_documents_whose_files_are_gone(tmp_path, corpus, embedder, chunker):
    pipeline = make_pipeline(tmp_path / "idx", embedder, chunker)
    pipeline.run([corpus])
    (corpus / "jazz.md").unlink()
    kept = pipeline.run([corpus])
    assert kept.documents_deleted == 0
    assert any("jazz" in src for src, _ in index_state(tmp_path / "idx"))
    pruned = pipeline.run([corpus], prune=True)
    assert pruned.documents_deleted == 1 and pruned.chunks_deleted > 0
    assert not any("jazz" in src for src, _ in index_state(tmp_path / "idx"))


def test_chunking_change_rechunks_from_stored_text_without_reading_files(tmp_path, corpus, embedder, chunker, monkeypatch):
    make_pipeline(tmp_path / "idx", embedder, chunker).run([corpus])
    before = index_state(tmp_path / "idx")

    def no_parsing(*args, **kwargs):
        raise AssertionError("files must not be parsed again")

    monkeypatch.setattr("ingest.pipeline.load_bytes", no_parsing)
    smaller = Chunker(chunker.count_tokens, chunk_tokens=32, overlap_tokens=4, tokenizer_name=chunker.tokenizer_name)
    report = make_pipeline(tmp_path / "idx", embedder, smaller).run([corpus])
    assert report.documents_rechunked == 8 and report.skipped_unchanged == 8
    after = index_state(tmp_path / "idx")
    assert len(after) > len(before)
    with IndexStore(tmp_path / "idx").reader() as reader:
        assert reader.fingerprint.startswith(smaller.fingerprint)


def test_rerun_after_chunking_change_equals_fresh_ingest(tmp_path, corpus, embedder, chunker):
    smaller = Chunker(chunker.count_tokens, chunk_tokens=32, overlap_tokens=4, tokenizer_name=chunker.tokenizer_name)
    make_pipeline(tmp_path / "a", embedder, chunker).run([corpus])
    make_pipeline(tmp_path / "a", embedder, smaller).run([corpus])
    make_pipeline(tmp_path / "b", embedder, smaller).run([corpus])
    assert index_state(tmp_path / "a") == index_state(tmp_path / "b")
    with IndexStore(tmp_path / "a").reader() as a, IndexStore(tmp_path / "b").reader() as b:
        query = embedder.embed_query("how do bees tell each other where flowers are")
        hits_a = [a.chunks([i])[i].text for i, _ in a.search_dense(query, 3)]
        hits_b = [b.chunks([i])[i].text for i, _ in b.search_dense(query, 3)]
        assert hits_a == hits_b and "waggle" in hits_a[0]


def test_bad_files_are_reported_and_the_rest_goes_in(tmp_path, corpus, embedder, chunker):
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 8)
    (corpus / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200))
    (corpus / "empty.md").write_text("")
    (corpus / "huge.txt").write_text("word " * 300_000)
    (corpus / "latin1.txt").write_bytes(("Le café était très naïf à Noël. " * 20).encode("latin-1"))
    (corpus / "loop.md").symlink_to(corpus / "loop.md")
    report = make_pipeline(tmp_path / "idx", embedder, chunker, max_file_bytes=1_000_000).run([corpus])
    failed = {Path(f.path).name: f.error for f in report.failed}
    assert set(failed) == {"broken.pdf", "image.txt", "empty.md", "huge.txt", "loop.md"}
    assert "PDF" in failed["broken.pdf"] and "binary" in failed["image.txt"]
    assert "empty" in failed["empty.md"] and "too large" in failed["huge.txt"]
    assert "symlink loop" in failed["loop.md"]
    assert report.ingested == 9  # the 8 topics and the Latin-1 file
    state = index_state(tmp_path / "idx")
    latin = [text for (src, _), (_, _, text) in state.items() if src.endswith("latin1.txt")]
    assert latin and "café était très naïf" in latin[0]


def test_progress_follows_the_pages_of_a_long_document(tmp_path, embedder, chunker):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nShort note.")
    (folder / "report.pdf").write_bytes(make_pdf([f"Chapter {n} of the annual report." for n in range(1, 5)]))
    progress = []
    make_pipeline(tmp_path / "idx", embedder, chunker, on_progress=progress.append).run([folder])
    reading = [(Path(p.reading).name, p.pages_done, p.pages_total, p.files_done) for p in progress if p.reading]
    assert reading == [("report.pdf", n, 4, 1) for n in range(1, 5)]  # while the second of two files is read
    assert (progress[-1].files_done, progress[-1].files_total, progress[-1].reading) == (2, 2, None)


def test_a_previously_good_file_that_breaks_keeps_its_last_version(tmp_path, corpus, embedder, chunker):
    pipeline = make_pipeline(tmp_path / "idx", embedder, chunker)
    pipeline.run([corpus])
    before = index_state(tmp_path / "idx")
    (corpus / "tides.md").write_bytes(b"\x00\x01\x02 binary garbage")
    report = pipeline.run([corpus])
    assert [Path(f.path).name for f in report.failed] == ["tides.md"]
    assert index_state(tmp_path / "idx") == before


def test_duplicate_chunk_texts_are_embedded_once(tmp_path, embedder, chunker):
    folder = tmp_path / "dups"
    write_corpus(folder / "a")
    write_corpus(folder / "b")
    report = make_pipeline(tmp_path / "idx", embedder, chunker).run([folder])
    assert report.ingested == 16
    assert report.chunks_embedded * 2 == report.chunks_added


def test_vectors_match_a_direct_embedding(tmp_path, corpus, embedder, chunker):
    make_pipeline(tmp_path / "idx", embedder, chunker).run([corpus])
    with IndexStore(tmp_path / "idx").reader() as reader:
        ids, vectors = reader.store.all_chunk_vectors(reader.vectors.dimension)
        # What is embedded is the heading path and the text (ingest.chunking.indexed_text).
        chunks = [reader.chunks([i])[i] for i in ids[:5]]
        texts = [indexed_text(c.text, c.heading) for c in chunks]
    assert any(c.heading for c in chunks)
    direct = embedder.model.encode(texts, normalize_embeddings=True)
    np.testing.assert_allclose(vectors[:5], direct, atol=1e-4)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


@pytest.mark.parametrize("bad", ["", "nope/../missing"])
def test_missing_paths_are_reported(tmp_path, embedder, chunker, bad):
    report = make_pipeline(tmp_path / "idx", embedder, chunker).run([tmp_path / "absent" / bad])
    assert report.files_seen == 0 and len(report.failed) == 1
    assert "no such file" in report.failed[0].error


def test_sentence_vectors_are_stored_at_ingest_and_follow_their_chunks(tmp_path, corpus, embedder, chunker):
    from generators.text.sentence_reader import SENTENCE_SPLIT_VERSION, split_sentences

    pipeline = make_pipeline(tmp_path / "idx", embedder, chunker)
    pipeline.run([corpus])
    with IndexStore(tmp_path / "idx").reader() as reader:
        ids = reader.vectors.ids().tolist()
        stored = reader.sentence_vectors(ids, SENTENCE_SPLIT_VERSION)
        assert sorted(stored) == sorted(ids)
        chunk = reader.chunks(ids[:1])[ids[0]]
        spans = split_sentences(chunk.text)
        live = embedder.embed([chunk.text[a:b] for a, b in spans]).vectors
        assert stored[ids[0]].shape == live.shape
        np.testing.assert_allclose(stored[ids[0]], live, atol=2e-3)  # kept as float16
        assert reader.sentence_vectors(ids, "another split") == {}

    # A changed file: its new chunks get sentence vectors, the old ones' go with them.
    first = sorted(corpus.glob("*"))[0]
    first.write_text(first.read_text() + "\n\nA brand new closing paragraph about something else entirely.\n")
    pipeline.run([corpus])
    with IndexStore(tmp_path / "idx").reader() as reader:
        ids = reader.vectors.ids().tolist()
        assert sorted(reader.sentence_vectors(ids, SENTENCE_SPLIT_VERSION)) == sorted(ids)
        kept = reader.store.conn.execute("SELECT COUNT(*) FROM sentence_vectors").fetchone()[0]
        distinct = reader.store.conn.execute("SELECT COUNT(DISTINCT text_hash) FROM chunks").fetchone()[0]
        assert kept == distinct


def test_sentence_vectors_can_be_left_out(tmp_path, corpus, embedder, chunker):
    from generators.text.sentence_reader import SENTENCE_SPLIT_VERSION

    report = make_pipeline(tmp_path / "idx", embedder, chunker, sentence_vectors=False).run([corpus])
    assert report.chunks_added > 0
    with IndexStore(tmp_path / "idx").reader() as reader:
        assert reader.sentence_vectors(reader.vectors.ids().tolist(), SENTENCE_SPLIT_VERSION) == {}
