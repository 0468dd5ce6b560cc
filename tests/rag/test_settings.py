"""Grouped settings: RAG_SECTION__FIELD variables, where each value came from, and docs generated from the code."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from rag.cli import app
from rag.cli.config import with_reference
from rag.settings import Settings, describe, env_name, setting_variable, unknown_variables

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_a_variable_names_its_section_and_field(monkeypatch):
    monkeypatch.setenv("RAG_RETRIEVAL__TOP_K", "7")
    monkeypatch.setenv("RAG_EMBEDDER__LANGUAGES", "null")
    monkeypatch.setenv("RAG_ABSTAIN__EVIDENCE", '{"en": 0.5}')
    settings = Settings()
    assert settings.retrieval.top_k == 7 and settings.embedder.languages is None
    assert settings.abstain.evidence == {"en": 0.5}
    assert settings.retrieval.bm25_depth == 50, "the other fields of the section keep their defaults"


def test_a_whole_section_as_json_and_arguments_merge_with_the_environment(monkeypatch):
    monkeypatch.setenv("RAG_RETRIEVAL", '{"top_k": 3, "bm25_depth": 9}')
    monkeypatch.setenv("RAG_RERANK__DEPTH", "11")
    settings = Settings(rerank={"model": "none"})
    assert (settings.retrieval.top_k, settings.retrieval.bm25_depth) == (3, 9)
    assert (settings.rerank.model, settings.rerank.depth) == ("none", 11)


def test_a_misspelt_field_is_an_error_that_names_the_variable(monkeypatch):
    monkeypatch.setenv("RAG_INGEST__CHUNK_TOKEN", "120")
    with pytest.raises(ValidationError) as raised:
        Settings()
    assert [setting_variable(e["loc"]) for e in raised.value.errors()] == ["RAG_INGEST__CHUNK_TOKEN"]
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 2 and "RAG_INGEST__CHUNK_TOKEN" in result.stderr


def test_updated_validates_and_leaves_the_original_alone():
    settings = Settings()
    changed = settings.updated({"ingest.engine": "ray", "index.dir": "/srv/index", "retrieval.top_k": None})
    assert changed.ingest.engine == "ray" and changed.index.dir == Path("/srv/index")
    assert settings.ingest.engine == "local" and changed.retrieval.top_k == settings.retrieval.top_k
    with pytest.raises(ValidationError) as raised:
        settings.updated({"retrieval.top_k": 0})
    assert setting_variable(raised.value.errors()[0]["loc"]) == "RAG_RETRIEVAL__TOP_K"
    with pytest.raises(KeyError):
        settings.updated({"retrieval.no_such_field": 1})


def test_describe_says_where_each_value_came_from(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("RAG_READER__WIDEN_BELOW=0.2\n")
    environ = {"RAG_RETRIEVAL__TOP_K": "8"}
    settings = Settings(_env_file=dotenv, rerank={"depth": 30}, retrieval={"top_k": 8}, reader={"widen_below": 0.2})
    sources = {row.variable: row.source for row in describe(settings, environ=environ, env_file=dotenv)}
    assert sources["RAG_RETRIEVAL__TOP_K"] == "environment"
    assert sources["RAG_READER__WIDEN_BELOW"] == ".env"
    assert sources["RAG_RERANK__DEPTH"] == "given"
    assert sources["RAG_INDEX__DIR"] == "default"
    assert len(sources) == sum(len(info.annotation.model_fields) for info in Settings.model_fields.values())


def test_config_show_prints_the_effective_values_and_their_sources(monkeypatch):
    monkeypatch.setenv("RAG_GENERATOR__MAX_NEW_TOKENS", "64")
    result = runner.invoke(app, ["config", "show", "--changed", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["variable"]: row for row in json.loads(result.stdout)}
    assert rows["RAG_GENERATOR__MAX_NEW_TOKENS"] == {"variable": "RAG_GENERATOR__MAX_NEW_TOKENS", "value": 64,
                                                     "source": "environment", "default": 192}
    assert "RAG_INDEX__DIR" not in rows, "--changed leaves defaults out"


def test_the_configuration_page_holds_the_reference_generated_from_the_code():
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert with_reference(page) == page, "run: rag config docs --update docs/configuration.md"


def test_every_variable_the_project_names_is_a_setting():
    """A renamed or misspelt RAG_SECTION__FIELD in the docs, README, code or scripts would be silently ignored."""
    known = {env_name(section, field) for section, info in Settings.model_fields.items()
             for field in info.annotation.model_fields}
    files = subprocess.run(["git", "ls-files", "*.md", "*.py", "Makefile", ".ci/*", "*.toml"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    named = {}
    for name in files:
        for variable in re.findall(r"\bRAG_[A-Z0-9]+__[A-Z0-9_]*[A-Z0-9]\b", (ROOT / name).read_text(encoding="utf-8")):
            named.setdefault(variable, name)
    unknown = {variable: where for variable, where in named.items()
               if variable not in known and variable not in {"RAG_INGEST__CHUNK_TOKEN", "RAG_SECTION__FIELD"}}
    assert len(named) > 50 and not unknown


def test_models_lists_each_role_with_its_licence():
    result = runner.invoke(app, ["models", "--json"])
    rows = {row["role"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {"embedder", "reranker", "reader", "generator", "image", "caption", "video"}
    assert rows["generator"]["default"] == Settings().generator.model and rows["generator"]["licence"] == "Apache-2.0"


def test_a_variable_that_sets_nothing_is_named_on_every_command(monkeypatch):
    monkeypatch.setenv("RAG_TOP_K", "3")  # the name before settings had sections
    monkeypatch.setenv("RAG_RETRIEVAL__TOP_K", "4")
    monkeypatch.setenv("RAG_API_KEY", "a-key-for-rag-mcp")
    assert unknown_variables() == ["RAG_TOP_K"]
    result = runner.invoke(app, ["config", "show", "--changed", "--json"])
    assert result.exit_code == 0 and "RAG_TOP_K sets nothing" in result.stderr
    assert json.loads(result.stdout)[0]["value"] == 4
