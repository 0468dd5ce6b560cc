"""`rag keys` and `rag ingest --group/--group-for/--public`: who may read what, set up from the command line."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from rag.api.app import create_app
from rag.cli import app
from tests.rag.api.conftest import make_settings

runner = CliRunner()


def _json(args: list[str]) -> dict | list:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_keys_are_made_listed_rotated_and_revoked(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_API__KEYS_FILE", str(tmp_path / "keys.json"))
    made = _json(["keys", "create", "reporting", "--group", "sales", "--collection", "default"])
    assert made["key"].startswith("rag_") and made["entry"]["groups"] == ["sales"]
    listed = _json(["keys", "list"])
    assert [k["name"] for k in listed] == ["reporting"] and "hash" not in listed[0]
    rotated = _json(["keys", "rotate", made["entry"]["id"]])
    assert rotated["key"] != made["key"] and rotated["entry"]["id"] == made["entry"]["id"]
    assert made["key"] not in (tmp_path / "keys.json").read_text() and rotated["key"] not in (tmp_path / "keys.json").read_text()
    assert runner.invoke(app, ["keys", "revoke", made["entry"]["id"]]).exit_code == 0
    assert _json(["keys", "list"]) == []
    assert runner.invoke(app, ["keys", "revoke", "k_nope"]).exit_code == 2


def test_ingest_gives_folders_and_globs_their_groups(tmp_path, monkeypatch):
    docs = tmp_path / "docs"
    (docs / "hr").mkdir(parents=True)
    (docs / "hr" / "pay.md").write_text("# Pay\n\nSalaries are paid on the 25th of each month.\n")
    (docs / "handbook.md").write_text("# Handbook\n\nThe office opens at nine and salaries are private.\n")
    settings = make_settings(tmp_path)
    monkeypatch.setenv("RAG_API__KEYS_FILE", str(settings.api.keys_file))
    result = runner.invoke(app, ["ingest", str(docs), "--index", str(settings.index.dir), "--group-for", "hr/*=hr",
                                 "--json"])
    assert result.exit_code == 0, result.output
    keys = {group: _json(["keys", "create", group, "--group", group])["key"] for group in ("hr", "sales")}
    with TestClient(create_app(settings, warm_up="blocking")) as client:
        def sources(group: str) -> set[str]:
            found = client.post("/search", json={"query": "When are salaries paid?"},
                                headers={"Authorization": f"Bearer {keys[group]}"}).json()["passages"]
            return {p["source"].rsplit("/", 1)[-1] for p in found}

        assert sources("hr") == {"pay.md", "handbook.md"} and sources("sales") == {"handbook.md"}
    # --public lifts the restriction on the next run, unchanged files included.
    assert runner.invoke(app, ["ingest", str(docs), "--index", str(settings.index.dir), "--public"]).exit_code == 0
    with TestClient(create_app(settings, warm_up="blocking")) as client:
        found = client.post("/search", json={"query": "When are salaries paid?"},
                            headers={"Authorization": f"Bearer {keys['sales']}"}).json()["passages"]
        assert any(p["source"].endswith("pay.md") for p in found)
    bad = runner.invoke(app, ["ingest", str(docs), "--index", str(settings.index.dir), "--group-for", "hr/*"])
    assert bad.exit_code == 2 and "GLOB=GROUP" in bad.stderr
