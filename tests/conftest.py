"""Shared fixtures: the real offline embedder (built once per session) and small corpora."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never reach the network: model resolution must succeed from local sources.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Questions without a mode go to the fast extractive reader (here and in the servers tests start): tests check
# plumbing; the generative default is measured by `rag eval docqa` and the regression gate, which name their mode.
os.environ.setdefault("RAG_READER__DEFAULT_MODE", "extractive")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

TOPICS = {
    "volcanoes": "Volcanoes form where magma reaches the surface. Basaltic lava flows far; rhyolite erupts explosively.",
    "bees": "Honey bees communicate the direction of flowers with a waggle dance performed inside the hive.",
    "tides": "Ocean tides are caused mainly by the gravitational pull of the Moon and, to a lesser degree, the Sun.",
    "compilers": "A compiler translates source code into machine code; an interpreter executes statements directly.",
    "coffee": "Coffee beans are the roasted seeds of Coffea plants; arabica is milder than robusta.",
    "glaciers": "Glaciers carve U-shaped valleys as they slowly flow downhill under their own weight.",
    "jazz": "Jazz originated in New Orleans, mixing blues, ragtime and brass band marches with improvisation.",
    "photosynthesis": "Plants convert light, water and carbon dioxide into glucose and oxygen by photosynthesis.",
}


def write_corpus(folder: Path, topics: dict[str, str] = TOPICS, repeat: int = 6) -> list[Path]:
    """One Markdown file per topic, long enough to make a few chunks each."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, sentence in topics.items():
        body = "\n\n".join(f"{sentence} Paragraph {i} about {name} adds detail number {i}." for i in range(repeat))
        path = folder / f"{name}.md"
        path.write_text(f"# {name.title()}\n\n## Overview\n\n{body}\n\n## Notes\n\nMore on {name}.\n", encoding="utf-8")
        paths.append(path)
    return paths


class CountingEmbedder:
    """The real embedder, noting the texts of every `embed` call (a question's too when `count_queries`: then
    it is embedded each time, as with no query cache)."""

    def __init__(self, inner, *, count_queries: bool = False) -> None:
        self.inner = inner
        self.count_queries = count_queries
        self.calls: list[list[str]] = []

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed(self, texts):
        self.calls.append(list(texts))
        return self.inner.embed(texts)

    def embed_query(self, text: str):
        return self.embed([text]).vectors[0] if self.count_queries else self.inner.embed_query(text)


@pytest.fixture(scope="session")
def embedder():
    from generators.text.embedder import SentenceEmbedder

    model = SentenceEmbedder()
    model.warm_up()
    return model


@pytest.fixture(scope="session")
def chunker(embedder):
    from ingest.chunking import Chunker

    tokenizer = embedder.tokenizer
    return Chunker(
        lambda text: len(tokenizer.encode(text, add_special_tokens=False, verbose=False)),
        chunk_tokens=64,
        overlap_tokens=8,
        tokenizer_name=embedder.model_name,
    )


@pytest.fixture
def corpus(tmp_path) -> Path:
    folder = tmp_path / "corpus"
    write_corpus(folder)
    return folder


def _minilm_tokenizer():
    from transformers import AutoTokenizer

    from generators.resolve import resolve_model

    path = resolve_model("sentence-transformers/all-MiniLM-L6-v2", role="embedder", setting="RAG_EMBEDDER__MODEL").path
    return AutoTokenizer.from_pretrained(str(path))


@pytest.fixture(scope="session")
def tiny_qa_model_dir(tmp_path_factory) -> Path:
    """A 2-layer DistilBERT QA model with random weights and the offline BERT tokenizer: plumbing only."""
    import torch
    from transformers import DistilBertConfig, DistilBertForQuestionAnswering

    torch.manual_seed(0)
    tokenizer = _minilm_tokenizer()
    config = DistilBertConfig(vocab_size=tokenizer.vocab_size, dim=32, hidden_dim=64, n_layers=2, n_heads=2,
                              max_position_embeddings=512)
    folder = tmp_path_factory.mktemp("tiny-qa")
    DistilBertForQuestionAnswering(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_cross_encoder_dir(tmp_path_factory) -> Path:
    """A 2-layer BERT cross-encoder (one relevance logit) with random weights: plumbing only."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    tokenizer = _minilm_tokenizer()
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=2, num_labels=1)
    folder = tmp_path_factory.mktemp("tiny-cross-encoder")
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_embedder_dir(tmp_path_factory) -> Path:
    """A 2-layer BERT sentence-transformers model (mean pooling) with random weights: plumbing only."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    tokenizer = _minilm_tokenizer()
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=2, max_position_embeddings=512)
    encoder = tmp_path_factory.mktemp("tiny-encoder")
    BertModel(config).save_pretrained(encoder)
    tokenizer.save_pretrained(encoder)
    transformer = Transformer(str(encoder), max_seq_length=128)
    model = SentenceTransformer(modules=[transformer, Pooling(transformer.get_embedding_dimension(), "mean")])
    folder = tmp_path_factory.mktemp("tiny-embedder")
    model.save_pretrained(str(folder))
    return folder


@pytest.fixture
def shipped_models(tmp_path, monkeypatch, tiny_qa_model_dir, tiny_cross_encoder_dir):
    """A stand-in for the project's shipped models folder, holding a tiny reader and a tiny reranker."""
    import shutil

    from generators import resolve

    folder = tmp_path / "models"
    shutil.copytree(tiny_qa_model_dir, folder / "reader-minilm-squad")
    shutil.copytree(tiny_cross_encoder_dir, folder / "reranker-minilm-squad")
    monkeypatch.setattr(resolve, "SHIPPED_MODELS_DIR", folder)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return folder


@pytest.fixture(scope="session")
def tiny_image_model_dir(tmp_path_factory) -> Path:
    """A tiny random Stable Diffusion pipeline folder (tests.tiny_models.py)."""
    pytest.importorskip("diffusers")
    from tests.tiny_models import build_tiny_text_to_image

    return build_tiny_text_to_image(tmp_path_factory.mktemp("tiny-sd"))


@pytest.fixture(scope="session")
def tiny_caption_model_dir(tmp_path_factory) -> Path:
    """A tiny random GIT captioner folder with the offline BERT tokenizer (tests.tiny_models.py)."""
    from tests.tiny_models import build_tiny_git

    return build_tiny_git(tmp_path_factory.mktemp("tiny-git"))


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory) -> Path:
    """A tiny random GPT-2 (no chat template) with the offline WordPiece tokenizer (tests/tiny_models.py)."""
    from tests.tiny_models import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.fixture(scope="session")
def tiny_video_model_dir(tmp_path_factory) -> Path:
    """A tiny random TextToVideoSDPipeline folder (tests/tiny_models.py)."""
    pytest.importorskip("diffusers")
    from tests.tiny_models import build_tiny_text_to_video

    return build_tiny_text_to_video(tmp_path_factory.mktemp("tiny-t2v"))


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for tiny models: on a busy 2-core machine two threads mostly wait on each other
    (measured 5-10x slower on the tiny diffusion pipelines)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_vlm_model_dir(tmp_path_factory) -> Path:
    """A tiny random LLaVA (a chat vision-language model) with the offline BERT tokenizer (tests/tiny_models.py)."""
    from tests.tiny_models import build_tiny_llava

    return build_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))
