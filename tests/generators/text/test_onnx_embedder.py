"""The onnx-int8 embedder backend: conversion, caching, pooling, threads and determinism.

Fast tests use a tiny random BERT saved as a sentence-transformers folder (the
MiniLM tokenizer, 2 layers); one slow test checks the real MiniLM against fp32.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from generators.text import onnx_export
from generators.text.embedder import SentenceEmbedder, _pool, _pooling_config

TEXTS = [
    "short",
    "A somewhat longer sentence about the migration of birds across the Mediterranean sea in autumn.",
    "Medium length text on compilers.",
    "北京是中国的首都。",
    "word " * 300,  # longer than the model reads: truncated, not an error
    "Bees dance to show where the flowers are.",
    "Tides follow the Moon.",
]


def write_st_folder(folder: Path, *, pooling: str = "mean_tokens", extra_module: bool = False) -> Path:
    """A sentence-transformers folder around a tiny random BERT (weights built here, nothing downloaded)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from generators.resolve import resolve_model

    minilm = resolve_model("sentence-transformers/all-MiniLM-L6-v2", role="embedder", setting="RAG_EMBEDDER__MODEL")
    tokenizer = AutoTokenizer.from_pretrained(str(minilm.path))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertModel(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    if extra_module:
        modules.append({"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"})
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 96, "do_lower_case": False}))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": 32,
        **{f"pooling_mode_{m}": m == pooling for m in ("cls_token", "mean_tokens", "max_tokens")},
    }))
    (folder / "2_Normalize").mkdir()
    return folder


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    return write_st_folder(tmp_path_factory.mktemp("tiny-st"))


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def tiny_onnx(tiny_folder, cache_dir) -> SentenceEmbedder:
    embedder = SentenceEmbedder(str(tiny_folder), backend="onnx-int8", cache_dir=cache_dir, threads=2,
                                batch_tokens=256, max_batch=3)
    embedder.warm_up()
    return embedder


def test_vectors_are_normalised_and_close_to_fp32_sentence_transformers(tiny_onnx, tiny_folder):
    from sentence_transformers import SentenceTransformer

    result = tiny_onnx.embed(TEXTS)
    assert result.vectors.shape == (len(TEXTS), 32) and result.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(result.vectors, axis=1), 1.0, atol=1e-5)
    fp32 = SentenceTransformer(str(tiny_folder), device="cpu").encode(TEXTS, normalize_embeddings=True)
    cosine = (result.vectors * fp32).sum(axis=1)
    assert cosine.min() > 0.98, cosine
    assert tiny_onnx.dimension == 32


def test_tokens_are_counted_once_and_capped_at_the_model_length(tiny_onnx):
    result = tiny_onnx.embed(TEXTS)
    assert result.tokens == sum(min(n, 96) for n in tiny_onnx.count_tokens(TEXTS))
    assert tiny_onnx.max_tokens == 96


def test_same_input_gives_identical_vectors_whatever_the_thread_count(tiny_onnx, tiny_folder, cache_dir):
    single = SentenceEmbedder(str(tiny_folder), backend="onnx-int8", cache_dir=cache_dir, threads=1,
                              batch_tokens=256, max_batch=3)
    first = tiny_onnx.embed(TEXTS).vectors
    assert np.array_equal(first, tiny_onnx.embed(TEXTS).vectors)
    assert np.array_equal(first, single.embed(TEXTS).vectors)


def test_batching_changes_vectors_only_by_quantisation_noise(tiny_onnx, tiny_folder, cache_dir):
    # Activation scales are per batch, so other batch mates may move a vector slightly, never more.
    alone = SentenceEmbedder(str(tiny_folder), backend="onnx-int8", cache_dir=cache_dir, max_batch=1)
    cosine = (alone.embed(TEXTS).vectors * tiny_onnx.embed(TEXTS).vectors).sum(axis=1)
    assert cosine.min() > 0.99, cosine


def test_empty_input_and_query(tiny_onnx):
    assert tiny_onnx.embed([]).vectors.shape == (0, 32)
    query = tiny_onnx.embed_query("where do bees go")
    assert query.shape == (32,) and abs(float(np.linalg.norm(query)) - 1) < 1e-5


def test_query_vectors_are_recalled_from_a_bounded_cache(tiny_folder, cache_dir, monkeypatch):
    embedder = SentenceEmbedder(str(tiny_folder), backend="onnx-int8", cache_dir=cache_dir, query_cache_size=2)
    embedded: list[list[str]] = []
    embed = embedder.embed
    monkeypatch.setattr(embedder, "embed", lambda texts: embedded.append(list(texts)) or embed(texts))
    first = embedder.embed_query("where do bees go")
    assert np.array_equal(first, embed(["where do bees go"]).vectors[0])
    assert embedder.embed_query("where do bees go") is first  # recalled, not embedded again
    assert not first.flags.writeable  # shared: no caller may change it for the others
    embedder.embed_query("how do ants talk")
    embedder.embed_query("where do bees go")  # touched: the ants are now the oldest
    embedder.embed_query("why do birds sing")  # past the size: the ants are forgotten
    embedder.embed_query("how do ants talk")
    assert embedded == [["where do bees go"], ["how do ants talk"], ["why do birds sing"], ["how do ants talk"]]
    off = SentenceEmbedder(str(tiny_folder), backend="onnx-int8", cache_dir=cache_dir, query_cache_size=0)
    calls = []
    off_embed = off.embed
    monkeypatch.setattr(off, "embed", lambda texts: calls.append(texts) or off_embed(texts))
    off.embed_query("where do bees go")
    off.embed_query("where do bees go")
    assert len(calls) == 2


def test_conversion_is_cached_and_keyed_by_the_model(tiny_folder, cache_dir, monkeypatch):
    path = onnx_export.int8_onnx_path(tiny_folder, cache_dir)
    assert path.is_file() and path.parent == cache_dir
    assert [p.name for p in cache_dir.iterdir()] == [path.name]  # no temporary files left behind

    def fail(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(onnx_export, "export_int8", fail)
    assert onnx_export.int8_onnx_path(tiny_folder, cache_dir) == path
    # Other weights, other key.
    config = json.loads((tiny_folder / "config.json").read_text())
    other = tiny_folder.parent / "other"
    other.mkdir(exist_ok=True)
    (other / "config.json").write_text(json.dumps({**config, "layer_norm_eps": 1e-6}))
    assert onnx_export.cache_key(other) != onnx_export.cache_key(tiny_folder)


def test_fingerprint_names_the_backend(tiny_folder, cache_dir):
    onnx = SentenceEmbedder(str(tiny_folder), backend="onnx-int8", cache_dir=cache_dir).fingerprint
    torch_int8 = SentenceEmbedder(str(tiny_folder), backend="int8").fingerprint
    assert ":onnx-int8:" in onnx and onnx != torch_int8


def test_pooling_config_modes_and_unsupported_modules(tmp_path):
    for mode in ("cls_token", "mean_tokens", "max_tokens"):
        folder = tmp_path / mode
        folder.mkdir()
        (folder / "modules.json").write_text(json.dumps([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ]))
        (folder / "1_Pooling").mkdir()
        (folder / "1_Pooling" / "config.json").write_text(
            json.dumps({"word_embedding_dimension": 8, f"pooling_mode_{mode}": True}))
        assert _pooling_config(folder) == {"mode": mode, "dimension": 8}
    dense = tmp_path / "dense"
    dense.mkdir()
    (dense / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Dense", "type": "sentence_transformers.models.Dense"},
    ]))
    with pytest.raises(ValueError, match="int8 .or torch. backend"):
        _pooling_config(dense)


def test_pool_ignores_padding():
    states = np.array([[[1.0, 0.0], [3.0, 2.0], [100.0, 100.0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0]])
    np.testing.assert_allclose(_pool(states, mask, "mean_tokens"), [[2.0, 1.0]])
    np.testing.assert_allclose(_pool(states, mask, "max_tokens"), [[3.0, 2.0]])
    np.testing.assert_allclose(_pool(states, mask, "cls_token"), [[1.0, 0.0]])


@pytest.mark.slow
def test_real_minilm_onnx_int8_stays_close_to_fp32(embedder, tmp_path_factory):
    onnx = SentenceEmbedder(backend="onnx-int8", cache_dir=tmp_path_factory.mktemp("minilm-onnx"))
    cosine = (onnx.embed(TEXTS).vectors * embedder.embed(TEXTS).vectors).sum(axis=1)
    assert cosine.min() > 0.97, cosine
    assert onnx.dimension == embedder.dimension == 384
