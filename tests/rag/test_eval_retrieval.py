"""`rag eval retrieval`: ranking metrics against hand-computed values, and the CLI on a tiny BEIR folder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag.cli import app
from rag.evaluation.metrics import dcg, mrr_at_k, ndcg_at_k, recall_at_k
from rag.evaluation.retrieval import configurations, document_file_name, load_beir
from tests.conftest import TOPICS

runner = CliRunner()
CONTRACT_KEYS = {"ndcg@10", "recall@10", "recall@100", "mrr@10", "latency_ms_p50", "latency_ms_p95"}


# -- metrics ----------------------------------------------------------------------------------
QRELS = {"a": 2, "b": 1, "c": 0}  # c is judged but not relevant


def test_dcg_uses_the_log2_discount():
    assert dcg([3, 2, 1]) == pytest.approx(3 / 1 + 2 / math.log2(3) + 1 / 2)


def test_ndcg_against_hand_computed_values():
    # DCG = 0/1 + 1/log2(3) + 2/log2(4) = 1.63093; ideal from the qrels: 2/1 + 1/log2(3) = 2.63093
    assert ndcg_at_k(["x", "b", "a", "c"], QRELS, 10) == pytest.approx((1 / math.log2(3) + 1) / (2 + 1 / math.log2(3)))
    assert ndcg_at_k(["x", "b", "a", "c"], QRELS, 10) == pytest.approx(0.61991, abs=1e-5)
    assert ndcg_at_k(["a", "b"], QRELS, 10) == pytest.approx(1.0)
    # cut-off 1: the ideal is the grade-2 document alone
    assert ndcg_at_k(["b", "a"], QRELS, 1) == pytest.approx(0.5)
    # documents retrieved beyond k do not count; nothing relevant retrieved → 0
    assert ndcg_at_k(["x", "y", "a"], QRELS, 2) == 0.0
    assert ndcg_at_k([], QRELS, 10) == 0.0
    assert ndcg_at_k(["c"], {"c": 0}, 10) == 0.0  # no relevant document at all


def test_recall_counts_relevant_documents_only():
    assert recall_at_k(["x", "b", "a", "c"], QRELS, 10) == 1.0
    assert recall_at_k(["x", "b", "a", "c"], QRELS, 2) == 0.5
    assert recall_at_k(["c", "x"], QRELS, 10) == 0.0  # judged non-relevant does not count
    assert recall_at_k(["a"], {}, 10) == 0.0


def test_mrr_is_the_reciprocal_rank_of_the_first_relevant_document():
    assert mrr_at_k(["x", "b", "a"], QRELS, 10) == 0.5
    assert mrr_at_k(["a"], QRELS, 10) == 1.0
    assert mrr_at_k(["x", "c", "b"], QRELS, 2) == 0.0  # first relevant at rank 3, beyond the cut-off
    assert mrr_at_k(["x", "y", "z", "b"], QRELS, 10) == 0.25


# -- loading ----------------------------------------------------------------------------------
CORPUS_IDS = {name: f"doc/{i}" if i % 2 else f"d{i}" for i, name in enumerate(TOPICS)}  # some ids need escaping
QUERIES = {
    "q-tides": (TOPICS["tides"], {"tides": 1}),  # the document's own sentence: must rank first
    "q-bees": ("How do honey bees tell each other where flowers are?", {"bees": 2, "glaciers": 0}),
    "q-lava": ("Which lava flows far and which erupts explosively?", {"volcanoes": 1}),
}


def write_beir(folder: Path) -> Path:
    (folder / "qrels").mkdir(parents=True)
    with (folder / "corpus.jsonl").open("w") as handle:
        for name, sentence in TOPICS.items():
            handle.write(json.dumps({"_id": CORPUS_IDS[name], "title": name.title(), "text": sentence}) + "\n")
    with (folder / "queries.jsonl").open("w") as handle:
        for query_id, (text, _) in QUERIES.items():
            handle.write(json.dumps({"_id": query_id, "text": text}) + "\n")
        handle.write(json.dumps({"_id": "q-unjudged", "text": "jazz in New Orleans"}) + "\n")  # no qrels: not run
    rows = ["query-id\tcorpus-id\tscore"] + [
        f"{query_id}\t{CORPUS_IDS[name]}\t{grade}"
        for query_id, (_, judged) in QUERIES.items() for name, grade in judged.items()
    ]
    (folder / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n")
    return folder


def test_load_beir_keeps_queries_with_relevant_documents(tmp_path):
    dataset = load_beir(write_beir(tmp_path / "beir"), "test")
    assert [q.id for q in dataset.queries] == list(QUERIES)
    assert dataset.queries[1].qrels == {CORPUS_IDS["bees"]: 2, CORPUS_IDS["glaciers"]: 0}
    with pytest.raises(ValueError, match="train.tsv"):
        load_beir(tmp_path / "beir", "train")


def test_document_file_names_are_safe_and_distinct():
    assert document_file_name("4983") == "4983.txt"
    escaped = {document_file_name(i) for i in ("a/b", "a_b", "a:b", ".hidden")}
    assert len(escaped) == 4 and all("/" not in n and not n.startswith(".") for n in escaped)


def test_configurations_pair_each_retriever_with_its_reranked_twin():
    assert [c.name for c in configurations(["dense", "bm25", "dense"], True)] == [
        "dense", "bm25", "dense+rerank", "bm25+rerank"]
    with pytest.raises(ValueError, match="splade"):
        configurations(["splade"], False)


# -- the command ------------------------------------------------------------------------------
@pytest.fixture
def small_settings(monkeypatch):
    monkeypatch.setenv("RAG_INGEST__CHUNK_TOKENS", "64")
    monkeypatch.setenv("RAG_INGEST__CHUNK_OVERLAP", "8")
    monkeypatch.setenv("RAG_RERANK__MODEL", "no-such-org/no-such-reranker")


def _run(*args: str):
    result = runner.invoke(app, ["eval", "retrieval", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result


def test_one_configuration_reports_the_contract_at_top_level_and_a_second_run_reuses_the_index(
        tmp_path, small_settings):
    beir = write_beir(tmp_path / "beir")
    work = ["--work", str(tmp_path / "work")]
    first, _ = _run("--beir", str(beir), *work, "--json")
    assert CONTRACT_KEYS <= set(first) and "configurations" not in first
    assert first["name"] == "hybrid" and first["queries"] == len(QUERIES)
    assert 0.0 < first["ndcg@10"] <= 1.0 and first["recall@100"] == 1.0 and first["mrr@10"] > 0.5
    assert first["latency_ms_p50"] > 0 and first["latency_ms_p95"] >= first["latency_ms_p50"]
    assert first["index"]["documents"] == len(TOPICS) and first["index"]["chunks_embedded"] > 0
    assert first["index"]["reused"] is False

    second, _ = _run("--beir", str(beir), *work, "--json")
    assert second["index"]["reused"] is True and second["index"]["chunks_embedded"] == 0
    assert second["index"]["files_ingested"] == 0 and second["index"]["fingerprint"] == first["index"]["fingerprint"]
    assert second["ndcg@10"] == first["ndcg@10"]


def test_several_configurations_side_by_side_with_rerank_skipped_offline(tmp_path, small_settings):
    beir = write_beir(tmp_path / "beir")
    out = tmp_path / "out"
    report, result = _run("--beir", str(beir), "--work", str(tmp_path / "work"), "--retriever", "dense", "bm25",
                          "hybrid", "--rerank", "--out", str(out), "--json")
    by_name = {c["name"]: c for c in report["configurations"]}
    assert list(by_name) == ["dense", "bm25", "hybrid", "dense+rerank", "bm25+rerank", "hybrid+rerank"]
    for name in ("dense", "bm25", "hybrid"):
        assert CONTRACT_KEYS <= set(by_name[name]) and by_name[name]["skipped"] is None
        assert by_name[name]["queries"] == len(QUERIES) and by_name[name]["recall@100"] == 1.0
    for name in ("dense+rerank", "bm25+rerank", "hybrid+rerank"):
        assert "no-such-reranker" in by_name[name]["skipped"]
        assert by_name[name]["ndcg@10"] is None and by_name[name]["queries"] == 0
    # the contract holds at top level too: the default (hybrid) configuration's metrics
    assert CONTRACT_KEYS <= set(report) and report["ndcg@10"] == by_name["hybrid"]["ndcg@10"]
    assert any("no-such-reranker" in note for note in report["notes"])

    summary = json.loads((out / "retrieval-beir-test.json").read_text())
    assert summary["configurations"] == report["configurations"]
    lines = [json.loads(line) for line in (out / "retrieval-beir-test.jsonl").read_text().splitlines()]
    assert len(lines) == 3 * len(QUERIES)
    for line in lines:
        assert {"configuration", "query_id", "ndcg@10", "recall@100", "mrr@10", "latency_ms", "top_10"} <= set(line)
    exact = [line for line in lines if line["query_id"] == "q-tides"]
    # the query is the document's own sentence: every configuration ranks it first
    assert [line["first_relevant_rank"] for line in exact] == [1, 1, 1]
    assert all(line["top_10"][0] == CORPUS_IDS["tides"] and line["ndcg@10"] == 1.0 for line in exact)

    table = (out / "retrieval-beir-test.md").read_text()
    assert "| configuration | ndcg@10 | recall@10 | recall@100 | mrr@10 |" in table
    assert f"| hybrid | {by_name['hybrid']['ndcg@10']:.3f} |" in table and "dense+rerank skipped" in table
    for chart in ("retrieval-beir-test-metrics.png", "retrieval-beir-test-latency.png"):
        assert (out / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stored = list((tmp_path / "work" / "results").glob("*/retrieval-beir-test.json"))
    assert len(stored) == 1 and json.loads(stored[0].read_text())["fingerprint"].startswith(
        report["index"]["fingerprint"])


def test_rerank_runs_when_a_reranker_resolves(tmp_path, small_settings, monkeypatch, tiny_cross_encoder_dir):
    monkeypatch.setenv("RAG_RERANK__MODEL", str(tiny_cross_encoder_dir))
    report, _ = _run("--beir", str(write_beir(tmp_path / "beir")), "--work", str(tmp_path / "work"),
                     "--retriever", "bm25,hybrid", "--rerank", "--json")
    by_name = {c["name"]: c for c in report["configurations"]}
    assert list(by_name) == ["bm25", "hybrid", "bm25+rerank", "hybrid+rerank"]
    # random weights: plumbing only; every configuration still finds all relevant documents within 100
    assert all(c["skipped"] is None and c["recall@100"] == 1.0 for c in by_name.values())


def test_human_output_and_clear_errors(tmp_path, small_settings):
    beir = write_beir(tmp_path / "beir")
    result = runner.invoke(app, ["eval", "retrieval", "--beir", str(beir), "--work", str(tmp_path / "work"),
                                 "--limit", "2"])
    assert result.exit_code == 0, result.output
    assert "nDCG@10" in result.stdout and "hybrid" in result.stdout and "2 queries" in result.stdout

    missing = runner.invoke(app, ["eval", "retrieval", "--beir", str(beir), "--split", "dev"])
    assert missing.exit_code == 2 and "dev.tsv" in missing.stderr
    wrong = runner.invoke(app, ["eval", "retrieval", "--beir", str(beir), "--retriever", "splade"])
    assert wrong.exit_code == 2 and "splade" in wrong.stderr
