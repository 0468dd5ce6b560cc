"""`rag eval docqa`: scoring of real documentation questions, and the command over a small corpus."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rag.chain import AskResponse, Citation
from rag.cli import app
from rag.evaluation.docqa import (
    DocQAItem, answer_contains, key_facts_found, load_docqa, same_page, score, summarise,
)
from rag.evaluation.gate import regressions


def _response(answer: str, sources: list[str], abstained: bool = False) -> AskResponse:
    citations = [Citation(doc_id=str(i), source=s, start=0, end=1, text="x", score=1.0) for i, s in enumerate(sources)]
    return AskResponse(answer=answer, abstained=abstained, confidence=0.5, answer_type="generated", mode="generative",
                       citations=citations, timings_ms={"total": 10.0})


def test_containment_ignores_case_and_runs_of_whitespace():
    assert answer_contains("They are  evaluated\nin ORDER.", ["are evaluated in order"]) == 1.0
    assert answer_contains("in order", ["are evaluated in order"]) == 0.0


def test_a_key_fact_counts_whole_or_by_two_thirds_of_its_words():
    assert key_facts_found("Declare /users/me before /users/{user_id}.", ["declare /users/me first",
                                                                          "routes match top to bottom"]) == 0.5
    assert key_facts_found("anything", []) == 0.0


def test_pages_compare_by_their_trailing_components():
    assert same_page("/data/corpus/docs/en/docs/tutorial/cors.md", "docs/en/docs/tutorial/cors.md")
    assert not same_page("/data/corpus/docs/zh/docs/tutorial/cors.md", "docs/en/docs/tutorial/cors.md")


def test_scores_and_summary_per_type():
    items = [
        DocQAItem("a", "q1", "docs/a.md", ["evaluated in order"], ["order"], "howto"),
        DocQAItem("b", "q2", "docs/b.md", ["yes"], [], "yesno"),
        DocQAItem("c", "q3", None, [], [], "unanswerable"),
    ]
    records = [
        score(items[0], _response("They are evaluated in order [1].", ["/x/docs/b.md", "/x/docs/a.md"]),
              first_token_ms=100, total_ms=900),
        score(items[1], _response("Not found in the documents.", ["/x/docs/b.md"], abstained=True),
              first_token_ms=50, total_ms=50),
        score(items[2], _response("Not found in the documents.", [], abstained=True), first_token_ms=40, total_ms=40),
    ]
    summary = summarise(records, file="q.json", mode="generative", notes=[], fingerprint=None)
    assert summary["contains"] == 0.5 and summary["citation_hit"] == 0.5 and summary["citation_top1"] == 0.0
    assert summary["abstain_unanswerable"] == 1.0 and summary["false_abstain_rate"] == 0.5
    assert summary["per_type"]["howto"]["contains"] == 1.0 and summary["per_type"]["unanswerable"]["questions"] == 1
    assert summary["median_answer_words"] == 6 and summary["first_token_ms_p50"] == 50


def test_the_gate_fails_when_false_abstentions_rise():
    dropped = regressions({"contains": 0.7, "false_abstain_rate": 0.2}, {"contains": 0.7, "false_abstain_rate": 0.05}, 0.02)
    assert [r.metric for r in dropped] == ["false_abstain_rate"] and dropped[0].drop == pytest.approx(0.15)


def test_a_malformed_file_is_a_clear_error(tmp_path):
    path = tmp_path / "q.json"
    path.write_text('{"not": "a list"}')
    with pytest.raises(ValueError, match="not a JSON list"):
        load_docqa(path)


@pytest.mark.slow
def test_the_command_ingests_asks_and_reports(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("RAG_RERANK__MODEL", "none")  # plumbing: the extractive chain, fast
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ingest.md").write_text("# Ingest\n\nRe-running an ingest only embeds files whose content changed.\n")
    (docs / "serve.md").write_text("# Serve\n\nThe server listens on port 8000 unless you pass --port.\n")
    questions = tmp_path / "q.json"
    questions.write_text(json.dumps([
        {"id": "1", "question": "Which port does the server listen on?", "source": "docs/serve.md",
         "answers": ["port 8000"], "key_facts": ["8000"], "type": "factoid"},
        {"id": "2", "question": "Who painted the Mona Lisa in the year 1503?", "source": None, "answers": [],
         "key_facts": [], "type": "unanswerable"},
    ]))
    result = CliRunner().invoke(app, ["eval", "docqa", str(questions), "--docs", str(docs), "--mode", "extractive",
                                      "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["questions"] == 2 and summary["answerable"] == 1
    assert summary["citation_hit"] == 1.0  # two pages: retrieval finds the right one
    assert set(summary["per_type"]) == {"factoid", "unanswerable"}
    assert (tmp_path / "out" / "docqa-q-extractive.jsonl").read_text().count("\n") == 2
    assert (tmp_path / "out" / "docqa-q-extractive-metrics.png").is_file()
