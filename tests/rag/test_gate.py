from __future__ import annotations

import json

import pytest

from rag.evaluation.gate import load_baseline, regressions


def test_only_quality_metrics_that_fell_more_than_the_tolerance_are_reported():
    baseline = {"ndcg@10": 0.70, "recall@100": 0.95, "mrr@10": 0.66, "latency_ms_p50": 10.0}
    current = {"ndcg@10": 0.68, "recall@100": 0.949, "mrr@10": 0.70, "latency_ms_p50": 99.0}
    found = regressions(current, baseline, max_drop=0.01)
    assert [r.metric for r in found] == ["ndcg@10"]
    assert found[0].drop == pytest.approx(0.02) and "0.6800" in str(found[0])
    assert regressions(current, baseline, max_drop=0.05) == []


def test_metrics_missing_on_either_side_are_not_compared():
    assert regressions({"f1": 0.1}, {"em": 0.9, "f1": None}, max_drop=0.0) == []


def test_unreadable_baselines_are_a_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="baseline"):
        load_baseline(bad)
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match="not a JSON object"):
        load_baseline(listed)
