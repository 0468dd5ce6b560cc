"""The `rag` CLI contracts: ingest --json, stats --json, search, and clean errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rag.cli import app

runner = CliRunner()

INGEST_KEYS = {"files_seen", "ingested", "skipped_unchanged", "failed", "chunks_added", "chunks_deleted", "seconds"}


@pytest.fixture
def small_settings(monkeypatch):
    monkeypatch.setenv("RAG_INGEST__CHUNK_TOKENS", "64")
    monkeypatch.setenv("RAG_INGEST__CHUNK_OVERLAP", "8")


def test_ingest_json_follows_the_contract_and_stats_reports_it(tmp_path, corpus, small_settings):
    (corpus / "bad.pdf").write_bytes(b"%PDF-1.7 not really")
    result = runner.invoke(app, ["ingest", str(corpus), "--index", str(tmp_path / "idx"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert INGEST_KEYS <= set(report)
    assert report["files_seen"] == 9 and report["ingested"] == 8
    assert [f["path"].endswith("bad.pdf") for f in report["failed"]] == [True]
    assert set(report["failed"][0]) == {"path", "error"}

    stats = runner.invoke(app, ["stats", "--index", str(tmp_path / "idx"), "--json"])
    assert stats.exit_code == 0, stats.output
    data = json.loads(stats.stdout)
    assert {"documents", "chunks", "fingerprint", "backend"} <= set(data)
    assert data["documents"] == 8 and data["chunks"] == report["chunks_added"] and data["backend"] == "faiss"

    again = json.loads(runner.invoke(app, ["ingest", str(corpus), "--index", str(tmp_path / "idx"), "--json"]).stdout)
    assert again["skipped_unchanged"] == 8 and again["chunks_added"] == 0


def test_search_finds_the_passage_with_its_span(tmp_path, corpus, small_settings):
    runner.invoke(app, ["ingest", str(corpus), "--index", str(tmp_path / "idx")])
    result = runner.invoke(app, ["search", "what causes ocean tides", "--index", str(tmp_path / "idx"), "--json"])
    assert result.exit_code == 0, result.output
    top = json.loads(result.stdout)["passages"][0]
    assert top["source"].endswith("tides.md") and "Moon" in top["text"]
    text = (corpus / "tides.md").read_text()
    assert text[top["start"] : top["end"]] == top["text"]


def test_stats_on_a_missing_index_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["stats", "--index", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "No index at" in result.stderr and "Traceback" not in result.output


def test_invalid_setting_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_INGEST__CHUNK_TOKENS", "lots")
    result = runner.invoke(app, ["ingest", str(tmp_path), "--index", str(tmp_path / "idx")])
    assert result.exit_code == 2
    assert "RAG_INGEST__CHUNK_TOKENS" in result.stderr


def test_unresolvable_embedder_names_the_setting(tmp_path, corpus, monkeypatch):
    monkeypatch.setenv("RAG_EMBEDDER__MODEL", "no-such-org/no-such-model")
    result = runner.invoke(app, ["ingest", str(corpus), "--index", str(tmp_path / "idx")])
    assert result.exit_code == 2
    assert "RAG_EMBEDDER__MODEL" in result.stderr and "no-such-org/no-such-model" in result.stderr


def test_empty_search_query_is_rejected(tmp_path):
    result = runner.invoke(app, ["search", "   ", "--index", str(tmp_path)])
    assert result.exit_code == 2 and "empty" in result.stderr


def test_ask_json_follows_the_contract_and_says_what_runs_offline(tmp_path, corpus, small_settings):
    runner.invoke(app, ["ingest", str(corpus), "--index", str(tmp_path / "idx")])
    result = runner.invoke(app, ["ask", "What causes ocean tides?", "--index", str(tmp_path / "idx"), "--json"])
    assert result.exit_code == 0, result.output
    response = json.loads(result.stdout)
    assert {"answer", "abstained", "confidence", "citations", "timings_ms"} <= set(response)
    assert not response["abstained"] and "Moon" in response["answer"]
    citation = response["citations"][0]
    assert {"doc_id", "source", "start", "end", "text", "score"} <= set(citation)
    assert (corpus / "tides.md").read_text()[citation["start"] : citation["end"]] == citation["text"]
    # Offline the Hub models are missing: the response says what answered instead (the reader this project
    # ships, or the sentence extractor) and which setting to change.
    assert response["answer_type"] in {"span", "sentence"}
    assert any("RAG_RERANK__MODEL" in n for n in response["notes"])
    assert any("RAG_READER__MODEL" in n for n in response["notes"])


def test_ask_with_a_source_filter_and_an_unknown_mode(tmp_path, corpus, small_settings):
    runner.invoke(app, ["ingest", str(corpus), "--index", str(tmp_path / "idx")])
    filtered = runner.invoke(app, ["ask", "What causes ocean tides?", "--index", str(tmp_path / "idx"),
                                   "--source", "*/jazz.md", "--json"])
    assert filtered.exit_code == 0, filtered.output
    assert all(c["source"].endswith("jazz.md") for c in json.loads(filtered.stdout)["citations"])
    bad = runner.invoke(app, ["ask", "What causes tides?", "--index", str(tmp_path / "idx"), "--mode", "psychic"])
    assert bad.exit_code == 2 and "psychic" in bad.stderr


def _squad_file(path):
    data = {"data": [{"title": "t", "paragraphs": [
        {"context": "Ocean tides are caused mainly by the gravitational pull of the Moon.",
         "qas": [{"id": "q1", "question": "What causes ocean tides?",
                  "answers": [{"text": "the gravitational pull of the Moon", "answer_start": 33}]}]},
        {"context": "Honey bees communicate the direction of flowers with a waggle dance.",
         "qas": [{"id": "q2", "question": "How do honey bees communicate the direction of flowers?",
                  "answers": [{"text": "with a waggle dance", "answer_start": 49}]}]},
    ]}]}
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("setting", ["gold", "open"])
def test_eval_qa_reports_the_contract_metrics(tmp_path, setting, monkeypatch):
    monkeypatch.setenv("RAG_READER__MODEL", "no-such-org/no-such-reader")  # the sentence reader: known answers
    squad = _squad_file(tmp_path / "mini.json")
    result = runner.invoke(app, ["eval", "qa", "--squad", str(squad), "--setting", setting,
                                 "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {"em", "f1", "recall@1", "recall@5", "abstain_rate", "latency_ms_p50"} <= set(report)
    assert report["questions"] == 2
    # The sentence answers contain the gold answers (each paragraph is one sentence).
    assert report["contains"] == 1.0 and report["f1"] > 0.5
    if setting == "open":
        assert report["recall@1"] == 1.0 and report["recall@5"] == 1.0
    lines = (tmp_path / "out" / f"qa-mini-{setting}-extractive.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["q1", "q2"]
    table = (tmp_path / "out" / f"qa-mini-{setting}-extractive.md").read_text()
    assert f"| extractive | {report['em']:.3f} | {report['f1']:.3f} | {report['contains']:.3f} |" in table
    assert (tmp_path / "out" / f"qa-mini-{setting}-extractive-latency.png").is_file()
    assert len(list((tmp_path / "work" / "results").glob(f"*/qa-mini-{setting}-extractive.json"))) == 1


def test_eval_qa_gold_answers_questions_the_reader_was_not_trained_for_with_sentences(tmp_path, monkeypatch,
                                                                                     tiny_qa_model_dir):
    monkeypatch.setenv("RAG_READER__MODEL", str(tiny_qa_model_dir))  # a span reader that serves English only
    data = {"data": [{"title": "t", "paragraphs": [
        {"context": "潮汐主要由月球的引力引起。蜜蜂用舞蹈交流。",
         "qas": [{"id": "z1", "question": "潮汐主要由什么引起？", "answers": [{"text": "月球的引力", "answer_start": 4}]}]},
    ]}]}
    squad = tmp_path / "zh.json"
    squad.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    result = runner.invoke(app, ["eval", "qa", "--squad", str(squad), "--setting", "gold",
                                 "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert any("not zh" in note for note in report["notes"]) and report["contains"] == 1.0
    record = json.loads((tmp_path / "out" / "qa-zh-gold-extractive.jsonl").read_text().splitlines()[0])
    assert record["answer_type"] == "sentence"


@pytest.mark.slow
def test_ask_generative_runs_the_packaged_local_model_and_cites_exact_spans(tmp_path, corpus, small_settings):
    runner.invoke(app, ["ingest", str(corpus), "--index", str(tmp_path / "idx")])
    result = runner.invoke(app, ["ask", "What causes ocean tides?", "--index", str(tmp_path / "idx"),
                                 "--mode", "generative", "--json"])
    assert result.exit_code == 0, result.output
    response = json.loads(result.stdout)
    assert response["mode"] == "generative" and response["answer_type"] == "generated"
    assert response["timings_ms"]["read"] > 0
    for citation in response["citations"]:
        source = corpus / citation["source"].rsplit("/", 1)[-1]
        assert source.read_text()[citation["start"] : citation["end"]] == citation["text"]
    if not response["abstained"]:
        assert response["answer"] and response["citations"]


def test_generative_mode_against_a_closed_port_is_a_clear_error(tmp_path, corpus, small_settings, monkeypatch):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("RAG_GENERATOR__BACKEND", "openai")
    monkeypatch.setenv("RAG_OPENAI__BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("RAG_OPENAI__MAX_RETRIES", "0")
    runner.invoke(app, ["ingest", str(corpus), "--index", str(tmp_path / "idx")])
    result = runner.invoke(app, ["ask", "What causes ocean tides?", "--index", str(tmp_path / "idx"),
                                 "--mode", "generative"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert str(port) in result.stderr or "connect" in result.stderr.lower()


def test_eval_qa_regression_gate_fails_on_a_drop_and_passes_otherwise(tmp_path):
    squad = _squad_file(tmp_path / "mini.json")
    args = ["eval", "qa", "--squad", str(squad), "--setting", "gold", "--work", str(tmp_path / "work"), "--json"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    same = tmp_path / "same.json"
    same.write_text(json.dumps(report))
    assert runner.invoke(app, [*args, "--baseline", str(same), "--max-drop", "0.01"]).exit_code == 0
    better = tmp_path / "better.json"
    better.write_text(json.dumps({**report, "f1": report["f1"] + 0.2}))
    gated = runner.invoke(app, [*args, "--baseline", str(better), "--max-drop", "0.05"])
    assert gated.exit_code == 1 and "f1" in gated.stderr
    # A tolerance larger than the drop lets it pass.
    assert runner.invoke(app, [*args, "--baseline", str(better), "--max-drop", "0.25"]).exit_code == 0


@pytest.mark.integration
def test_index_migrate_moves_the_vectors_to_milvus_and_the_backend_option_follows(tmp_path, corpus, small_settings):
    pytest.importorskip("milvus_lite")
    index = str(tmp_path / "idx")
    runner.invoke(app, ["ingest", str(corpus), "--index", index])
    before = json.loads(runner.invoke(app, ["search", "what causes ocean tides", "--index", index, "--json"]).stdout)

    moved = runner.invoke(app, ["index", "migrate", "--to", "milvus", "--index", index, "--json"])
    assert moved.exit_code == 0, moved.output
    result = json.loads(moved.stdout)
    assert result["from"] == "faiss" and result["to"] == "milvus" and result["vectors"] > 0

    # The FAISS backend now refuses, saying how to go on; --backend milvus answers as before.
    refused = runner.invoke(app, ["ask", "What causes ocean tides?", "--index", index])
    message = " ".join(refused.stderr.split())
    assert refused.exit_code == 2 and "keeps its vectors in milvus" in message and "--backend milvus" in message
    assert "Traceback" not in refused.output
    stats = json.loads(runner.invoke(app, ["stats", "--index", index, "--backend", "milvus", "--json"]).stdout)
    assert stats["backend"] == "milvus" and stats["chunks"] == result["vectors"]
    answer = runner.invoke(app, ["ask", "What causes ocean tides?", "--index", index, "--backend", "milvus", "--json"])
    assert answer.exit_code == 0, answer.output
    assert "Moon" in json.loads(answer.stdout)["answer"]
    after = runner.invoke(app, ["search", "what causes ocean tides", "--index", index, "--json"],
                          env={"RAG_INDEX__BACKEND": "milvus"})
    assert [p["text"] for p in json.loads(after.stdout)["passages"]] == [p["text"] for p in before["passages"]]
    # A new ingest with --backend milvus updates Milvus in place.
    (corpus / "tides.md").write_text("Tides are caused by the gravity of the Moon and the Sun, twice a day.")
    again = json.loads(runner.invoke(app, ["ingest", str(corpus), "--index", index, "--backend", "milvus",
                                           "--json"]).stdout)
    assert again["ingested"] == 1 and again["chunks_deleted"] > 0
