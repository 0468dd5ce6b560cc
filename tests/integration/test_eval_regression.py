"""The regression gate in CI: a small, fast subset of the public benchmarks, scored by `rag eval` with
the offline default models and compared with the committed baselines in `bench/baselines/`.

A change that costs more than MAX_DROP on any quality metric fails here. After an intended change
of quality, rerun the commands in bench/baselines/README.md and commit the new files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag.cli import app

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
BASELINES = ROOT / "bench" / "baselines"
MAX_DROP = "0.02"
runner = CliRunner()


def _data(relative: str) -> Path:
    path = DATA / relative
    if not path.exists():
        message = f"{path} is absent (the shared benchmark data sits beside the project)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _run(args: list[str]) -> dict:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output  # exit 1 names the metric that fell
    return json.loads(result.stdout)


def test_open_qa_on_xquad_en_holds_its_baseline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    report = _run(["eval", "qa", "--squad", str(_data("qa/xquad.en.json")), "--setting", "open", "--limit", "100",
                   "--work", str(tmp_path), "--json", "--baseline", str(BASELINES / "xquad-en-open-100.json"),
                   "--max-drop", MAX_DROP])
    assert report["questions"] == 100


def test_hybrid_retrieval_on_scifact_holds_its_baseline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    report = _run(["eval", "retrieval", "--beir", str(_data("retrieval/scifact")), "--limit", "100",
                   "--work", str(tmp_path), "--json", "--baseline", str(BASELINES / "scifact-hybrid-100.json"),
                   "--max-drop", MAX_DROP])
    assert report["queries"] == 100
