"""Evaluation outputs people read: a Markdown table, PNG charts, and results kept per index fingerprint.

One shape serves both `rag eval qa` and `rag eval retrieval`: an `EvalTable`
holds one row of metrics per configuration and, per configuration (or per
chain stage), the latency samples. Charts use matplotlib's Agg backend
(no display needed), imported only when charts are written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rag.evaluation.metrics import percentile

RESULTS_DIR = "results"


@dataclass
class EvalTable:
    title: str
    metrics: list[str]  # column names, in order (values in 0..1)
    rows: dict[str, dict[str, float | None]] = field(default_factory=dict)  # configuration → metric → value
    latency_ms: dict[str, list[float]] = field(default_factory=dict)  # series name → samples
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        header = ["configuration", *self.metrics]
        if self.latency_ms:
            header += ["latency p50 ms", "latency p95 ms"]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
        for name, values in self.rows.items():
            cells = [name] + ["-" if values.get(m) is None else f"{values[m]:.3f}" for m in self.metrics]
            if self.latency_ms:
                samples = self.latency_ms.get(name) or self.latency_ms.get("total") or []
                cells += [f"{percentile(samples, 50):.1f}", f"{percentile(samples, 95):.1f}"] if samples else ["-", "-"]
            lines.append("| " + " | ".join(cells) + " |")
        for note in self.notes:
            lines += ["", f"- {note}"]
        return "\n".join(lines) + "\n"


def read_json(path: Path, what: str, shape: type, shape_name: str):
    """The JSON in `path`, which must be a `shape`; a ValueError naming `what` the file is otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read the {what} {path}: {exc}") from None
    if not isinstance(data, shape):
        raise ValueError(f"the {what} {path} is not {shape_name}")
    return data


def write_records(records: Iterable, path: Path) -> None:
    """One JSON line per record (a dataclass), for error analysis."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")


def write_charts(table: EvalTable, out: Path, stem: str) -> list[Path]:
    """`<stem>-metrics.png` (grouped bars per configuration) and `<stem>-latency.png` (box plot per series)."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never a display
    import matplotlib.pyplot as plt
    import numpy as np

    out.mkdir(parents=True, exist_ok=True)
    written = []
    names = list(table.rows)
    if names and table.metrics:
        fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(table.metrics) * max(1, len(names)) ** 0.5), 4.0))
        width = 0.8 / len(names)
        x = np.arange(len(table.metrics))
        for i, name in enumerate(names):
            values = [table.rows[name].get(m) or 0.0 for m in table.metrics]
            bars = ax.bar(x + (i - (len(names) - 1) / 2) * width, values, width, label=name)
            ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=1)
        ax.set_xticks(x, table.metrics)
        ax.set_ylim(0, 1.08)
        ax.set_ylabel("score")
        ax.set_title(table.title)
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        path = out / f"{stem}-metrics.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    series = {name: samples for name, samples in table.latency_ms.items() if samples}
    if series:
        fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(series)), 4.0))
        ax.boxplot(list(series.values()), showfliers=True)
        ax.set_xticks(range(1, len(series) + 1), list(series))
        ax.set_yscale("log")
        ax.set_ylabel("milliseconds (log scale)")
        ax.set_title(f"latency: {table.title}")
        fig.tight_layout()
        path = out / f"{stem}-latency.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def write_report(table: EvalTable, summary: dict, out: Path, stem: str) -> list[Path]:
    """The summary JSON, the Markdown table and the charts, side by side in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    json_path.write_text(json.dumps(summary, indent=1, ensure_ascii=False), encoding="utf-8")
    md_path.write_text(table.markdown(), encoding="utf-8")
    return [json_path, md_path, *write_charts(table, out, stem)]


def fingerprint_key(fingerprint: str | None) -> str:
    """A short folder name for an index fingerprint (the full one is inside each stored summary)."""
    if not fingerprint:
        return "no-index"
    return hashlib.sha256(fingerprint.encode()).hexdigest()[:12]


def store_result(work: Path, fingerprint: str | None, stem: str, summary: dict, table: EvalTable) -> Path:
    """Keep the summary under `<work>/results/<fingerprint key>/`, so runs of two pipeline versions sit
    side by side and one can be the other's `--baseline`."""
    folder = work / RESULTS_DIR / fingerprint_key(fingerprint)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.json"
    path.write_text(json.dumps({**summary, "fingerprint": fingerprint}, indent=1, ensure_ascii=False), encoding="utf-8")
    (folder / f"{stem}.md").write_text(table.markdown(), encoding="utf-8")
    return path
