"""FAISS index types by size, deletes and updates on every type, cheap commits, memory-mapped reads."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from index.faiss_collection import CompactionPolicy, FaissCollection, base_path, delta_path
from index.faiss_store import FaissIndexConfig, FaissVectorStore
from index.backends import FaissBackend
from index.store import IndexStore
from tests.index.test_store import document

DIM = 32


def unit_vectors(n: int, seed: int, dim: int = DIM) -> np.ndarray:
    # Clustered, like real embeddings: approximate indexes are judged on structure, not on noise.
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(n // 50, 1), dim))
    matrix = centres[rng.integers(0, len(centres), n)] + 0.3 * rng.normal(size=(n, dim))
    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)


def exact_top(vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    return ids[np.argsort(-(queries @ vectors.T), axis=1)[:, :k]]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


SMALL_PQ = FaissIndexConfig(pq_bytes=16, ivf_lists=16, ivf_nprobe=16, hnsw_m=16)


def test_kind_follows_the_collection_size():
    config = FaissIndexConfig(hnsw_from=100, ivfpq_from=1000)
    assert [config.kind_for(n) for n in (0, 99, 100, 999, 1000)] == ["flat", "flat", "hnsw", "hnsw", "ivfpq"]
    assert FaissIndexConfig(kind="hnsw").kind_for(3) == "hnsw"


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq"])
def test_each_type_finds_neighbours_and_honours_filters_and_exclusions(kind):
    ids = np.arange(3000, dtype=np.int64) * 7 + 3
    vectors = unit_vectors(3000, 1)
    store = FaissVectorStore.build(ids, vectors, config=SMALL_PQ, kind=kind)
    assert store.kind == kind and len(store) == 3000
    queries = vectors[:50] + 0.05 * unit_vectors(50, 2)
    found, scores = store.search(queries, 10)
    # PQ codes blur close neighbours (the reader re-scores them exactly; see the next tests).
    assert recall(found, exact_top(vectors, ids, queries, 10)) >= {"flat": 0.99, "hnsw": 0.9, "ivfpq": 0.4}[kind]
    assert np.all(np.diff(scores, axis=1) <= 1e-5), "results come best first"

    allowed = ids[::10]
    found, _ = store.search(queries, 5, allowed_ids=allowed)
    assert set(found[found >= 0].tolist()) <= set(allowed.tolist())

    store.exclude(ids[:1500])
    found, _ = store.search(queries, 10)
    assert not set(found[found >= 0].tolist()) & set(ids[:1500].tolist())


def test_hnsw_cannot_remove_but_flat_and_ivfpq_can():
    ids = np.arange(600, dtype=np.int64)
    vectors = unit_vectors(600, 3)
    with pytest.raises(TypeError, match="HNSW"):
        FaissVectorStore.build(ids, vectors, kind="hnsw").remove(ids[:3])
    for kind in ("flat", "ivfpq"):
        store = FaissVectorStore.build(ids, vectors, config=SMALL_PQ, kind=kind)
        assert store.remove(ids[:3]) == 3 and len(store) == 597
        assert not set(store.ids().tolist()) & {0, 1, 2}


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq"])
def test_collection_deletes_and_updates_on_every_type(tmp_path, kind):
    config = FaissIndexConfig(kind=kind, pq_bytes=8, ivf_lists=16, ivf_nprobe=16, hnsw_m=16)
    policy = CompactionPolicy(merge_min=100, merge_max=100, rebuild_fraction=0.3)
    ids = np.arange(1000, dtype=np.int64)
    vectors = unit_vectors(1000, 4)
    collection = FaissCollection(DIM, config=config, policy=policy)
    collection.add(ids, vectors)
    collection.write(tmp_path, 1, lambda: (ids, vectors))
    assert collection.base is not None and collection.base.kind == kind and len(collection.delta) == 0

    reopened = FaissCollection.read(tmp_path, 1, config=config, policy=policy)
    assert reopened.remove(ids[:10]) == 10 and reopened.remove(ids[:10]) == 0  # deleting twice counts once
    # An update: a chunk's vector changes under the same id.
    moved = unit_vectors(1, 99)
    reopened.add(ids[20:21], moved)
    assert len(reopened) == 990
    reopened.write(tmp_path, 2, lambda: (ids[10:], vectors[10:]))
    assert reopened.base_generation == 1, "a small change writes the delta only"
    assert not base_path(tmp_path, 2).exists()

    latest = FaissCollection.read(tmp_path, 2, config=config, policy=policy)
    found, scores = latest.search(vectors[:10], 5)
    assert not set(found.ravel().tolist()) & set(range(10)), "deleted ids never come back"
    found, scores = latest.search(moved, 1)
    assert found[0, 0] == 20 and scores[0, 0] == pytest.approx(1.0, abs=1e-4)
    assert sorted(latest.ids().tolist()) == list(range(10, 1000))


def test_deletes_past_the_rebuild_fraction_rebuild_the_base(tmp_path):
    policy = CompactionPolicy(merge_min=50, merge_max=50, rebuild_fraction=0.2)
    config = FaissIndexConfig(kind="hnsw", hnsw_m=16)
    ids = np.arange(500, dtype=np.int64)
    vectors = unit_vectors(500, 5)
    collection = FaissCollection(DIM, config=config, policy=policy)
    collection.add(ids, vectors)
    collection.write(tmp_path, 1, lambda: (ids, vectors))
    collection.remove(ids[:150])
    collection.write(tmp_path, 2, lambda: (ids[150:], vectors[150:]))
    assert collection.base_generation == 2 and not collection.deleted
    assert len(collection.base) == 350, "the rebuilt graph holds only live vectors"


def test_growth_past_a_threshold_switches_the_index_type(tmp_path):
    layout = FaissBackend(config=FaissIndexConfig(hnsw_from=40, ivfpq_from=100_000, hnsw_m=8),
                          policy=CompactionPolicy(merge_min=10, merge_max=10))
    store = IndexStore(tmp_path, backend=layout)
    with store.writer() as writer:
        for n in range(8):
            texts = [f"document {n} passage {i}" for i in range(10)]
            writer.replace_document(*document(f"d{n}", texts), unit_vectors(10, n))
            writer.commit()
            assert writer.vectors.kind == ("hnsw" if (n + 1) * 10 >= 40 else "flat")
        assert writer.delete_document("d0") == 10
        writer.commit()
    with store.reader() as reader:
        assert reader.vectors.kind == "hnsw" and len(reader.vectors) == 70
        target = unit_vectors(10, 3)[4]
        chunk_id, score = reader.search_dense(target, 1)[0]
        assert reader.chunks([chunk_id])[chunk_id].text == "document 3 passage 4"
        assert score == pytest.approx(1.0, abs=1e-4)
    names = sorted(p.name for p in tmp_path.glob("vectors.*"))
    assert len([n for n in names if n.endswith(".faiss")]) == 1 and delta_path(tmp_path, 9).name in names


def test_readers_memory_map_the_base(tmp_path):
    ids = np.arange(400, dtype=np.int64)
    vectors = unit_vectors(400, 6)
    FaissVectorStore.build(ids, vectors, kind="hnsw").write(tmp_path / "base.faiss")
    mapped = FaissVectorStore.read(tmp_path / "base.faiss", mmap=True)
    loaded = FaissVectorStore.read(tmp_path / "base.faiss")
    assert np.array_equal(mapped.search(vectors[:5], 3)[0], loaded.search(vectors[:5], 3)[0])


def test_an_index_written_before_deltas_still_opens(tmp_path):
    ids = np.arange(20, dtype=np.int64)
    vectors = unit_vectors(20, 7)
    FaissVectorStore.build(ids, vectors).write(base_path(tmp_path, 3))
    collection = FaissCollection.read(tmp_path, 3)
    assert len(collection) == 20 and collection.base_generation == 3
    assert collection.files(4, tmp_path) == {"vectors.4.delta.npz", "vectors.3.faiss"}


@pytest.mark.parametrize("config", [
    FaissIndexConfig(kind="ivfpq", pq_bytes=4, ivf_lists=8, ivf_nprobe=8),
    FaissIndexConfig(kind="hnsw", hnsw_m=16, hnsw_storage="sq8"),
    FaissIndexConfig(kind="hnsw", hnsw_m=16, hnsw_storage="sq8", hnsw_pca_dim=12),
], ids=["ivfpq", "hnsw-sq8", "hnsw-pca-sq8"])
def test_compressed_candidates_are_rescored_with_the_docstore_vectors(tmp_path, config):
    vectors = unit_vectors(2000, 8)
    layouts = {
        refine: FaissBackend(config=replace(config, refine=refine), policy=CompactionPolicy(merge_min=0))
        for refine in (1, 8)
    }
    found = {}
    for refine, layout in layouts.items():
        store = IndexStore(tmp_path / f"r{refine}", backend=layout)
        with store.writer() as writer:
            for n in range(20):
                writer.replace_document(*document(f"d{n}", [f"d{n} p{i}" for i in range(100)]), vectors[n * 100:(n + 1) * 100])
            writer.commit()
        with store.reader() as reader:
            assert reader.vectors.kind == config.kind and reader.vectors.rescore_factor == refine
            ids, exact = reader.store.all_chunk_vectors(DIM)
            queries = vectors[::40] + 0.05 * unit_vectors(50, 9)
            truth = exact_top(exact, ids, queries, 10)
            hits = [reader.search_dense(q, 10) for q in queries]
            found[refine] = recall(np.array([[i for i, _ in h] for h in hits]), truth)
            if refine > 1:
                top_id, top_score = hits[0][0]
                assert top_score == pytest.approx(float(exact[ids == top_id][0] @ queries[0]), abs=1e-5), "exact scores"
    assert found[8] >= found[1] and found[8] >= 0.9
    if config.kind == "ivfpq":  # 4-byte codes lose neighbours that re-scoring a wider list recovers
        assert found[8] > found[1]


@pytest.mark.parametrize("storage", ["sq8", "fp16"])
def test_quantised_hnsw_is_smaller_finds_neighbours_and_memory_maps(tmp_path, storage):
    ids = np.arange(3000, dtype=np.int64) * 5
    vectors = unit_vectors(3000, 10)
    config = FaissIndexConfig(kind="hnsw", hnsw_m=16, hnsw_storage=storage)
    store = FaissVectorStore.build(ids, vectors, config=config)
    plain = FaissVectorStore.build(ids, vectors, config=FaissIndexConfig(kind="hnsw", hnsw_m=16))
    assert store.kind == "hnsw" and not store.exact_scores and plain.exact_scores
    assert store.bytes_per_vector() < plain.bytes_per_vector() - {"sq8": 3, "fp16": 2}[storage] * DIM + 8
    queries = vectors[:50] + 0.05 * unit_vectors(50, 11)
    found, _ = store.search(queries, 10)
    assert recall(found, exact_top(vectors, ids, queries, 10)) >= 0.85
    store.write(tmp_path / "base.faiss")
    mapped = FaissVectorStore.read(tmp_path / "base.faiss", mmap=True)
    assert not mapped.exact_scores and np.array_equal(mapped.search(queries, 10)[0], found)


def low_rank_unit_vectors(n: int, seed: int, rank: int = 8) -> np.ndarray:
    """Vectors that vary mostly within `rank` directions, as embeddings do (most variance in few components)."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(DIM, rank)))[0].T
    matrix = unit_vectors(n, seed, rank) @ basis + 0.02 * rng.normal(size=(n, DIM))
    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)


def test_pca_hnsw_walks_fewer_dimensions_and_its_candidates_rescore_to_the_exact_neighbours(tmp_path):
    ids = np.arange(3000, dtype=np.int64) * 7
    vectors = low_rank_unit_vectors(3000, 12)
    config = FaissIndexConfig(kind="hnsw", hnsw_m=16, hnsw_pca_dim=12)
    store = FaissVectorStore.build(ids, vectors, config=config)
    plain = FaissVectorStore.build(ids, vectors, config=FaissIndexConfig(kind="hnsw", hnsw_m=16))
    assert store.kind == "hnsw" and not store.exact_scores
    assert store.bytes_per_vector() < plain.bytes_per_vector() - 4 * (DIM - 12) + 8  # 12 floats kept of 32
    queries = vectors[:50] + 0.05 * unit_vectors(50, 13)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    truth = exact_top(vectors, ids, queries, 10)
    found, scores = store.search(queries, 40)
    exact_scores = np.array([[vectors[ids == i][0] @ q for i in row] for row, q in zip(found, queries)])
    assert np.all(np.diff(scores, axis=1) <= 1e-6), "best first, as cosine similarities"
    assert np.abs(scores - exact_scores).max() < 0.05, "distances in the reduced space approximate cosine"
    rescored = [row[np.argsort(-exact)][:10] for row, exact in zip(found, exact_scores)]
    assert recall(np.array(rescored), truth) >= 0.95

    store.exclude(truth[:, 0])
    assert not set(store.search(queries, 10)[0].ravel()) & set(truth[:, 0]), "exclusions reach through the projection"
    store.write(tmp_path / "base.faiss")
    mapped = FaissVectorStore.read(tmp_path / "base.faiss", mmap=True)
    assert mapped.kind == "hnsw" and not mapped.exact_scores
    assert np.array_equal(mapped.search(queries, 40)[0], found)


def test_pca_hnsw_needs_fewer_components_than_dimensions_and_enough_vectors_to_learn_them():
    vectors = low_rank_unit_vectors(200, 14)
    with pytest.raises(ValueError, match="hnsw_pca_dim"):
        FaissVectorStore.build(np.arange(200), vectors, config=FaissIndexConfig(kind="hnsw", hnsw_pca_dim=DIM))
    # Too few to learn the projection: a plain graph now, the projection at the rebuild of a grown collection.
    small = FaissVectorStore.build(np.arange(20), vectors[:20], config=FaissIndexConfig(kind="hnsw", hnsw_pca_dim=12))
    assert small.kind == "hnsw" and small.exact_scores
    assert small.search(vectors[:3], 1)[0].ravel().tolist() == [0, 1, 2]
    empty = FaissVectorStore.build(np.zeros(0, dtype=np.int64), vectors[:0],
                                   config=FaissIndexConfig(kind="hnsw", hnsw_storage="sq8", hnsw_pca_dim=12))
    assert len(empty) == 0 and empty.search(vectors[:2], 5)[0].shape == (2, 0)


def test_a_graph_stored_in_cluster_order_finds_the_same_neighbours_under_the_same_ids(tmp_path):
    ids = np.arange(4000, dtype=np.int64) * 3 + 1
    vectors = unit_vectors(4000, 15)
    queries = vectors[::80] + 0.05 * unit_vectors(50, 16)
    plain = FaissVectorStore.build(ids, vectors, config=FaissIndexConfig(kind="hnsw", hnsw_m=16, hnsw_reorder=False))
    ordered = FaissVectorStore.build(ids, vectors, config=FaissIndexConfig(kind="hnsw", hnsw_m=16))
    assert np.array_equal(plain.ids(), ids)
    assert not np.array_equal(ordered.ids(), ids) and np.array_equal(np.sort(ordered.ids()), ids), "renumbered"
    found = plain.search(queries, 10)[0]
    assert np.array_equal(ordered.search(queries, 10)[0], found)
    ordered.write(tmp_path / "base.faiss")
    assert np.array_equal(FaissVectorStore.read(tmp_path / "base.faiss", mmap=True).search(queries, 10)[0], found)
    for store in (plain, ordered):
        store.exclude(ids[::80])
    assert np.array_equal(ordered.search(queries, 10)[0], plain.search(queries, 10)[0])
    assert not set(ordered.search(queries, 10)[0].ravel()) & set(ids[::80])
