from __future__ import annotations

import numpy as np
import pytest

from generators.text.embedder import SentenceEmbedder, plan_batches

TEXTS = [
    "short",
    "A somewhat longer sentence about the migration of birds across the Mediterranean sea in autumn.",
    "Medium length text on compilers.",
    "北京是中国的首都。",
    "word " * 300,  # longer than the model reads: truncated, not an error
]


def test_plan_batches_respects_budget_and_covers_every_item():
    lengths = [5, 300, 40, 41, 7, 256, 100, 3]
    batches = plan_batches(lengths, batch_tokens=400, max_batch=3)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 3
        assert max(lengths[i] for i in batch) * len(batch) <= 400 or len(batch) == 1
    # Longest first, so similar lengths share a batch.
    assert batches[0][0] == 1


def test_vectors_are_normalised_and_match_sentence_transformers(embedder):
    result = embedder.embed(TEXTS)
    assert result.vectors.shape == (len(TEXTS), embedder.dimension) and result.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(result.vectors, axis=1), 1.0, atol=1e-5)
    direct = embedder.model.encode(TEXTS, normalize_embeddings=True)
    np.testing.assert_allclose(result.vectors, direct, atol=1e-4)
    assert result.tokens > 256


def test_batching_does_not_change_vectors(embedder):
    small = SentenceEmbedder(batch_tokens=64, max_batch=2)
    small._model, small._tokenizer = embedder.model, embedder.tokenizer  # same weights, other batching
    np.testing.assert_allclose(small.embed(TEXTS).vectors, embedder.embed(TEXTS).vectors, atol=1e-4)


def test_empty_input(embedder):
    assert embedder.embed([]).vectors.shape == (0, embedder.dimension)


@pytest.mark.slow
def test_int8_backend_stays_close_to_fp32(embedder):
    int8 = SentenceEmbedder(backend="int8")
    cosine = (int8.embed(TEXTS).vectors * embedder.embed(TEXTS).vectors).sum(axis=1)
    assert cosine.min() > 0.95
    assert int8.fingerprint != embedder.fingerprint


def test_fingerprint_is_stable_and_tracks_the_model(embedder, tmp_path):
    assert SentenceEmbedder().fingerprint == embedder.fingerprint
    assert embedder.fingerprint.startswith("all-MiniLM-L6-v2:torch:")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "onnx-int8"])
def test_worker_processes_give_the_vectors_of_one_process(backend, tmp_path):
    texts = [f"passage {i}: " + "tides and moons " * (i % 7 + 1) for i in range(40)]
    alone = SentenceEmbedder(backend=backend, max_batch=4, cache_dir=tmp_path)
    pooled = SentenceEmbedder(backend=backend, max_batch=4, processes=2, cache_dir=tmp_path)
    try:
        result = pooled.embed(texts)
        assert pooled._pool is not None, "40 texts in batches of 4 go to the workers"
        np.testing.assert_allclose(result.vectors, alone.embed(texts).vectors, atol=1e-5)
        assert result.tokens == alone.embed(texts).tokens
        pooled.embed(["one query"])  # short inputs stay here
    finally:
        pooled.close()
    assert pooled._pool is None
