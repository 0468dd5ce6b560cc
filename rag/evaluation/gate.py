"""Regression gate: compare an evaluation's metrics with a stored baseline and fail on a large drop."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rag.evaluation.report import read_json

# Metrics where higher is better; latency is left out (machines differ too much to gate on it).
GATED_METRICS = ("em", "f1", "contains", "recall@1", "recall@5", "ndcg@10", "recall@10", "recall@100", "mrr@10",
                 "key_facts", "citation_hit", "citation_top1", "abstain_unanswerable")
# Metrics where lower is better (a rise past the allowed drop fails).
GATED_LOWER_METRICS = ("false_abstain_rate",)


@dataclass(frozen=True)
class Regression:
    metric: str
    baseline: float
    current: float
    lower_is_better: bool = False

    @property
    def drop(self) -> float:
        return self.current - self.baseline if self.lower_is_better else self.baseline - self.current

    def __str__(self) -> str:
        return f"{self.metric}: {self.current:.4f} vs baseline {self.baseline:.4f} (drop {self.drop:.4f})"


def load_baseline(path: Path) -> dict:
    return read_json(path, "baseline", dict, "a JSON object of metrics")


def regressions(current: dict, baseline: dict, max_drop: float) -> list[Regression]:
    """Metrics present in both that got worse by more than `max_drop` (absolute)."""
    found = []
    gated = [(m, False) for m in GATED_METRICS] + [(m, True) for m in GATED_LOWER_METRICS]
    for metric, lower_is_better in gated:
        old, new = baseline.get(metric), current.get(metric)
        if isinstance(old, int | float) and isinstance(new, int | float):
            regression = Regression(metric, float(old), float(new), lower_is_better)
            if regression.drop > max_drop + 1e-12:
                found.append(regression)
    return found
