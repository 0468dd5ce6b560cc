"""MilvusVectorStore against a real milvus-lite database: the VectorStore contract, FAISS parity, reopening."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from itertools import count
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from index import milvus_store  # noqa: E402
from index.faiss_store import FaissVectorStore  # noqa: E402
from index.milvus_store import MilvusVectorStore  # noqa: E402
from index.vectors import VectorStore  # noqa: E402

pytestmark = pytest.mark.integration

DIM = 16
ROOT = Path(__file__).resolve().parents[2]
_COLLECTIONS = count()


def unit_vectors(n: int, seed: int, dim: int = DIM) -> np.ndarray:
    matrix = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def release_lite(path: Path | str) -> None:
    """Shut this process's milvus-lite server for `path`, so the next client reads it back from disk."""
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(str(path))


@pytest.fixture(scope="module")
def lite_path(tmp_path_factory):
    """One milvus-lite database for the module (starting one costs about a second); a collection per test."""
    path = tmp_path_factory.mktemp("milvus") / "vectors.db"
    yield path
    release_lite(path)


@pytest.fixture
def make_store(lite_path):
    stores: list[MilvusVectorStore] = []

    def make(dimension: int = DIM, *, collection: str | None = None, **options) -> MilvusVectorStore:
        name = collection or f"c{next(_COLLECTIONS)}"
        store = MilvusVectorStore(lite_path, name, dimension, **options)
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.drop()
        store.close()


@pytest.fixture
def store(make_store) -> MilvusVectorStore:
    return make_store(index_type="FLAT")


def test_constructor_is_cheap_and_store_satisfies_protocol(tmp_path):
    store = MilvusVectorStore(tmp_path / "sub" / "never.db", "chunks", DIM)
    assert isinstance(store, VectorStore)
    assert store.dimension == DIM and store.is_lite
    assert store._client is None
    assert not (tmp_path / "sub").exists()  # nothing touched before first use


def test_round_trip_returns_nearest_ids_with_cosine_scores(store):
    data = unit_vectors(300, seed=1)
    ids = np.arange(300, dtype=np.int64) * 7 + 3  # ids unlike row numbers
    store.add(ids, data)
    assert len(store) == 300

    queries = unit_vectors(6, seed=2)
    found, scores = store.search(queries, 5)
    similarity = queries @ data.T
    expected = ids[np.argsort(-similarity, axis=1)[:, :5]]
    assert found.shape == scores.shape == (6, 5)
    assert found.dtype == np.int64 and scores.dtype == np.float32
    np.testing.assert_array_equal(found, expected)
    np.testing.assert_allclose(scores, np.sort(similarity, axis=1)[:, ::-1][:, :5], atol=1e-5)

    # A stored vector is its own best match, with score 1.
    self_ids, self_scores = store.search(data[10], 1)
    assert self_ids[0, 0] == ids[10]
    assert self_scores[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_upsert_replaces_vector_of_existing_id(store):
    data = unit_vectors(20, seed=3)
    store.add(np.arange(20), data)
    replacement = unit_vectors(1, seed=4)
    store.add(np.array([5]), replacement)
    assert len(store) == 20
    np.testing.assert_allclose(store.vectors(np.array([5]))[0], replacement[0], atol=1e-6)
    found, scores = store.search(replacement, 1)
    assert found[0, 0] == 5 and scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    # The old vector of id 5 is gone: id 5 now scores as the replacement does.
    found, scores = store.search(data[5], 20)
    assert scores[found == 5][0] == pytest.approx(float(data[5] @ replacement[0]), abs=1e-5)


def test_repeated_id_within_one_add_keeps_the_last_vector(store):
    # Clusters refuse a batch naming a primary key twice, so the store keeps the last row itself.
    ids, rows = milvus_store._last_of_each(np.array([4, 9, 4, 4, 1]), np.arange(5.0)[:, None])
    np.testing.assert_array_equal(ids, [9, 4, 1])
    np.testing.assert_array_equal(rows[:, 0], [1.0, 3.0, 4.0])

    data = unit_vectors(3, seed=5)
    store.add(np.array([1, 2, 1]), data)
    assert len(store) == 2
    np.testing.assert_allclose(store.vectors(np.array([1, 2])), data[[2, 1]], atol=1e-6)


def test_remove_counts_present_ids_and_they_vanish(store):
    data = unit_vectors(30, seed=6)
    store.add(np.arange(30), data)
    assert store.remove(np.array([3, 4, 4, 999, 1000])) == 2  # duplicates and absent ids are not counted
    assert len(store) == 28
    found, _ = store.search(data[[3, 4]], 28)
    assert not np.isin(found, [3, 4]).any()
    assert store.remove(np.array([3, 4])) == 0
    assert store.remove(np.array([], dtype=np.int64)) == 0


def test_add_and_remove_work_in_batches(store, monkeypatch):
    monkeypatch.setattr(milvus_store, "_ROWS_PER_REQUEST", 16)
    calls = {"upsert": 0, "delete": 0}
    client = store.client
    for name in calls:
        original = getattr(client, name)

        def counted(*args, _original=original, _name=name, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(client, name, counted)
    data = unit_vectors(100, seed=7)
    store.add(np.arange(100), data)
    assert calls["upsert"] == 7  # ceil(100 / 16)
    assert len(store) == 100
    assert store.remove(np.arange(0, 100, 2)) == 50
    assert calls["delete"] == 4  # ceil(50 / 16)
    np.testing.assert_array_equal(store.ids(), np.arange(1, 100, 2))


def test_allowed_ids_restrict_results(store):
    data = unit_vectors(200, seed=8)
    store.add(np.arange(200), data)
    allowed = np.array([5, 17, 42, 99, 150])
    queries = unit_vectors(4, seed=9)
    found, scores = store.search(queries, 3, allowed_ids=allowed)
    assert found.shape == (4, 3)
    assert np.isin(found, allowed).all()
    similarity = queries @ data[allowed].T
    np.testing.assert_array_equal(found, allowed[np.argsort(-similarity, axis=1)[:, :3]])
    np.testing.assert_allclose(scores, np.sort(similarity, axis=1)[:, ::-1][:, :3], atol=1e-5)

    # The closest vector overall is excluded when its id is not allowed.
    best, _ = store.search(data[0], 1, allowed_ids=np.array([1, 2]))
    assert best[0, 0] in (1, 2)


def test_empty_allowed_ids_return_empty_arrays(store):
    store.add(np.arange(10), unit_vectors(10, seed=10))
    found, scores = store.search(unit_vectors(3, seed=11), 5, allowed_ids=np.array([], dtype=np.int64))
    assert found.shape == scores.shape == (3, 0)
    assert found.dtype == np.int64 and scores.dtype == np.float32


def test_k_larger_than_collection_or_allowed_set(store):
    store.add(np.arange(4), unit_vectors(4, seed=12))
    found, scores = store.search(unit_vectors(2, seed=13), 10)
    assert found.shape == scores.shape == (2, 4)  # capped at the collection size, like FAISS
    assert sorted(found[0]) == [0, 1, 2, 3]
    assert (np.diff(scores, axis=1) <= 1e-6).all()  # best first

    # Allowed ids that are not stored leave empty slots: id -1.
    found, scores = store.search(unit_vectors(1, seed=14), 10, allowed_ids=np.array([1, 2, 77]))
    assert found.shape == (1, 3)
    assert sorted(found[0][:2]) == [1, 2] and found[0, 2] == -1


def test_search_of_empty_store(make_store):
    store = make_store()
    assert len(store) == 0
    found, scores = store.search(unit_vectors(2, seed=15), 5)
    assert found.shape == scores.shape == (2, 0)
    assert store.ids().shape == (0,)


def test_dimension_mismatches_raise(store, make_store):
    with pytest.raises(ValueError, match="dimension 8, the index 16"):
        store.add(np.arange(2), unit_vectors(2, seed=16, dim=8))
    with pytest.raises(ValueError, match="2 ids but 3 vectors"):
        store.add(np.arange(2), unit_vectors(3, seed=17))
    with pytest.raises(ValueError, match="queries have dimension 8"):
        store.search(unit_vectors(1, seed=18, dim=8), 3)
    store.add(np.arange(2), unit_vectors(2, seed=19))
    other = make_store(32, collection=store.collection)
    with pytest.raises(ValueError, match=f"collection '{store.collection}'.*dimension 16, not 32"):
        len(other)


def test_unsupported_lite_index_type_is_refused_up_front(tmp_path):
    with pytest.raises(ValueError, match="milvus-lite cannot build a 'DISKANN' index"):
        MilvusVectorStore(tmp_path / "x.db", "chunks", DIM, index_type="DISKANN")


@pytest.mark.parametrize("index_type", ["AUTOINDEX", "FLAT"])
def test_agrees_with_exact_faiss_after_the_index_is_built(make_store, index_type):
    data = unit_vectors(2000, seed=20, dim=32)
    ids = np.arange(2000, dtype=np.int64) + 10_000
    queries = unit_vectors(50, seed=21, dim=32)
    faiss_store = FaissVectorStore(32)
    faiss_store.add(ids, data)

    store = make_store(32, index_type=index_type)  # default search parameters
    store.add(ids, data)
    # milvus-lite brute-forces rows still in memory; flushing and reloading builds the real index
    # (HNSW for AUTOINDEX), which is what a reopened database searches.
    client = store.client
    client.flush(store.collection)
    client.release_collection(store.collection)
    client.load_collection(store.collection)

    expected, expected_scores = faiss_store.search(queries, 10)
    found, scores = store.search(queries, 10)
    recall = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, expected, strict=True)])
    assert recall >= 0.99
    np.testing.assert_allclose(scores[:, 0], expected_scores[:, 0], atol=1e-5)

    # Filtered: an id outside the allowed set never appears. HNSW under a 1-in-7 filter is approximate
    # (recall about 0.985 at the default ef=64), FLAT is exact.
    allowed = ids[::7]
    expected, _ = faiss_store.search(queries, 10, allowed_ids=allowed)
    found, _ = store.search(queries, 10, allowed_ids=allowed)
    assert np.isin(found, allowed).all()
    recall = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, expected, strict=True)])
    assert recall >= (1.0 if index_type == "FLAT" else 0.95)


def test_ids_and_vectors_round_trip(store, monkeypatch):
    monkeypatch.setattr(milvus_store, "_IDS_PAGE", 7)  # several pages
    data = unit_vectors(50, seed=22)
    ids = np.random.default_rng(23).permutation(np.arange(1000, 1050))
    store.add(ids, data)
    np.testing.assert_array_equal(store.ids(), np.arange(1000, 1050))
    wanted = ids[[10, 3, 3, 40]]
    np.testing.assert_allclose(store.vectors(wanted), data[[10, 3, 3, 40]], atol=1e-6)
    assert store.vectors(np.array([], dtype=np.int64)).shape == (0, DIM)
    with pytest.raises(KeyError, match="5"):
        store.vectors(np.array([1000, 5]))


def test_drop_empties_the_collection(store):
    store.add(np.arange(5), unit_vectors(5, seed=24))
    store.drop()
    assert not store.client.has_collection(store.collection)
    assert len(store) == 0  # recreated, empty


def test_threads_share_one_client(make_store):
    store = make_store()
    clients: list[object] = []
    threads = [threading.Thread(target=lambda: clients.append(store.client)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(clients) == 6 and all(client is clients[0] for client in clients)


def test_reopening_the_file_sees_the_data(tmp_path):
    path = tmp_path / "reopen.db"
    data = unit_vectors(40, seed=25)
    first = MilvusVectorStore(path, "chunks", DIM, index_type="HNSW")
    first.add(np.arange(40), data)
    first.remove(np.array([7]))
    first.close()
    release_lite(path)  # really close the database, so the next store reads it back from disk

    second = MilvusVectorStore(path, "chunks", DIM)
    try:
        assert len(second) == 39
        found, scores = second.search(data[12], 1)
        assert found[0, 0] == 12 and scores[0, 0] == pytest.approx(1.0, abs=1e-5)
        np.testing.assert_allclose(second.vectors(np.array([39])), data[[39]], atol=1e-6)
        assert 7 not in second.ids()
    finally:
        second.close()
        release_lite(path)


def _run_child(path: Path) -> subprocess.CompletedProcess:
    code = textwrap.dedent(
        f"""
        from index.milvus_store import MilvusVectorStore
        store = MilvusVectorStore({str(path)!r}, "chunks", {DIM})
        try:
            print("count", len(store))
        except ConnectionError as exc:
            print("error", exc)
        """
    )
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_second_process_gets_a_clear_error_while_the_file_is_open(tmp_path):
    path = tmp_path / "shared.db"
    store = MilvusVectorStore(path, "chunks", DIM)
    store.add(np.arange(3), unit_vectors(3, seed=26))
    try:
        child = _run_child(path)
        assert child.returncode == 0, child.stderr
        assert child.stdout.startswith("error Another process has the milvus-lite database")
        assert "milvus-lite server --data-dir" in child.stdout
        assert "Traceback" not in child.stderr  # milvus-lite's own logged traceback is held back
    finally:
        store.close()
        release_lite(path)
    child = _run_child(path)  # once this process lets go, the other one reads what was written
    assert child.stdout.strip() == "count 3", child.stderr


def test_unreachable_cluster_raises_runtime_error():
    store = MilvusVectorStore("http://127.0.0.1:9", "chunks", DIM, timeout=5)
    with pytest.raises(ConnectionError, match="Cannot connect to Milvus at http://127.0.0.1:9"):
        len(store)


def test_missing_pymilvus_raises_import_error_with_install_hint(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pymilvus", None)  # makes `import pymilvus` fail
    store = MilvusVectorStore(tmp_path / "x.db", "chunks", DIM)
    with pytest.raises(ImportError, match=r"pip install 'rag-service\[milvus\]'"):
        store.add(np.arange(1), unit_vectors(1, seed=27))
