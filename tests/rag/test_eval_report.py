"""Evaluation outputs: the Markdown table, the PNG charts, and results kept per pipeline version."""

from __future__ import annotations

import json

from rag.evaluation.report import EvalTable, fingerprint_key, store_result, write_report


def _table() -> EvalTable:
    table = EvalTable("mini (test)", ["ndcg@10", "recall@10"], notes=["hybrid+rerank skipped: no reranker"])
    table.rows["dense"] = {"ndcg@10": 0.5, "recall@10": 0.75}
    table.rows["bm25"] = {"ndcg@10": 0.25, "recall@10": None}
    table.latency_ms = {"dense": [10.0, 20.0, 30.0], "bm25": [1.0, 2.0, 3.0]}
    return table


def test_markdown_has_one_row_per_configuration_with_latency_percentiles():
    lines = _table().markdown().splitlines()
    assert lines[0] == "### mini (test)"
    assert lines[2] == "| configuration | ndcg@10 | recall@10 | latency p50 ms | latency p95 ms |"
    assert lines[3] == "|---|---:|---:|---:|---:|"
    assert lines[4].startswith("| dense | 0.500 | 0.750 | 20.0 |")
    assert lines[5].startswith("| bm25 | 0.250 | - | 2.0 |")
    assert lines[-1] == "- hybrid+rerank skipped: no reranker"


def test_report_writes_json_markdown_and_readable_charts(tmp_path):
    import matplotlib.image

    written = write_report(_table(), {"ndcg@10": 0.5}, tmp_path, "retrieval-mini-test")
    assert [p.name for p in written] == ["retrieval-mini-test.json", "retrieval-mini-test.md",
                                         "retrieval-mini-test-metrics.png", "retrieval-mini-test-latency.png"]
    assert json.loads(written[0].read_text()) == {"ndcg@10": 0.5}
    for chart in written[2:]:
        height, width = matplotlib.image.imread(chart).shape[:2]
        assert height > 100 and width > 100


def test_results_of_two_pipeline_versions_are_kept_side_by_side(tmp_path):
    first = store_result(tmp_path, "chunker:a|embedder:x", "qa-mini-open-extractive", {"f1": 0.5}, _table())
    second = store_result(tmp_path, "chunker:a|embedder:y", "qa-mini-open-extractive", {"f1": 0.6}, _table())
    assert first.parent != second.parent and first.name == second.name
    assert first.parent.name == fingerprint_key("chunker:a|embedder:x")
    assert json.loads(first.read_text()) == {"f1": 0.5, "fingerprint": "chunker:a|embedder:x"}
    assert (second.parent / "qa-mini-open-extractive.md").is_file()
    again = store_result(tmp_path, "chunker:a|embedder:x", "qa-mini-open-extractive", {"f1": 0.55}, _table())
    assert again == first and json.loads(first.read_text())["f1"] == 0.55
