"""Embedder fine-tuning: in-batch negatives on a tiny model, and the index noticing the new weights."""

from __future__ import annotations

from generators.text.embedder import SentenceEmbedder
from generators.training.embedder import EmbedderTrainer, EmbedderTrainingConfig, retrieval_accuracy
from tests.generators.training.test_reranker import EXAMPLES


def test_training_ranks_the_relevant_passages_first_and_changes_the_fingerprint(tiny_embedder_dir, tmp_path):
    from sentence_transformers import SentenceTransformer

    before = retrieval_accuracy(SentenceTransformer(str(tiny_embedder_dir)), EXAMPLES)
    out = tmp_path / "embedder"
    config = EmbedderTrainingConfig(max_seq_len=48, batch_size=4, learning_rate=3e-3, warmup_ratio=0.0,
                                    max_steps=60, eval_steps=30, save_steps=30, threads=1)
    result = EmbedderTrainer(str(tiny_embedder_dir), out, config, heldout=EXAMPLES).run(EXAMPLES)
    assert result.steps == 60 and [row["step"] for row in result.evaluations] == [30, 60]
    # Memorising four queries is plumbing, not quality: the loss pulls each query to its own passage.
    assert result.evaluations[-1]["accuracy@1"] == 1.0 > before["accuracy@1"]
    base, tuned = SentenceEmbedder(str(tiny_embedder_dir), backend="torch"), SentenceEmbedder(str(out), backend="torch")
    assert tuned.fingerprint != base.fingerprint
    assert tuned.embed(["who built the lighthouse"]).vectors.shape == base.embed(["who built the lighthouse"]).vectors.shape


def test_the_index_re_embeds_after_the_embedder_is_fine_tuned(tiny_embedder_dir, tmp_path, corpus, monkeypatch):
    from rag.components import build_ingest_pipeline, build_store
    from rag.settings import Settings

    monkeypatch.setenv("RAG_EMBEDDER__BACKEND", "torch")
    monkeypatch.setenv("RAG_INGEST__CHUNK_TOKENS", "64")
    monkeypatch.setenv("RAG_INGEST__CHUNK_OVERLAP", "8")

    def ingest(model: str):
        monkeypatch.setenv("RAG_EMBEDDER__MODEL", model)
        settings = Settings()
        store = build_store(settings, tmp_path / "index")
        return build_ingest_pipeline(settings, store).run([corpus])

    first = ingest(str(tiny_embedder_dir))
    assert first.chunks_embedded > 0 and ingest(str(tiny_embedder_dir)).chunks_embedded == 0
    out = tmp_path / "embedder"
    config = EmbedderTrainingConfig(max_seq_len=48, batch_size=4, max_steps=2, threads=1)
    EmbedderTrainer(str(tiny_embedder_dir), out, config).run(EXAMPLES)
    assert ingest(str(out)).chunks_embedded == first.chunks_embedded
