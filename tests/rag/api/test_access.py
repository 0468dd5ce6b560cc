"""Documents per group: a key reads the public documents and those of its groups, by every route and reader mode,
and nothing of the others: no passage, span, title, id or count, not through follow-ups, not through BM25
statistics."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from rag.api.app import create_app
from rag.api.keys import KeyStore
from tests.rag.api.conftest import TIDES, make_settings

LEDGER = b"# Ledger\n\nThe vault code is ALPHA7731 and the ledger balance is forty two talers.\n"
PLANS = b"# Plans\n\nThe launch date is BRAVO5512 for the rocket plans of the crew.\n"
ACCOUNTS = b"# Accounts\n\nA ledger records every balance of the accounts kept by the clerks.\n"
MARKERS = {"alpha": ("ALPHA7731", "ledger.md", "Ledger"), "bravo": ("BRAVO5512", "plans.md", "Plans")}
QUESTIONS = ["What is the vault code?", "What is the ledger balance?", "ALPHA7731", "When is the launch date?",
             "rocket plans launch", "BRAVO5512"]


def _upload(client: TestClient, key: str, name: str, content: bytes, groups: str | None = None) -> dict:
    data = {"collection": "default", **({"groups": groups} if groups else {})}
    response = client.post("/documents", files={"file": (name, content, "text/markdown")}, data=data,
                           headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def world(tmp_path, tiny_lm_dir):
    """An app with an admin key, a key per group, and documents of each group and public ones; the generative
    mode runs a tiny random language model (what it writes does not matter here, what it is shown does)."""
    settings = make_settings(tmp_path, generator={"model": str(tiny_lm_dir), "max_new_tokens": 8})
    _, admin = KeyStore(settings.api.keys_file).create("operator", admin=True)
    with TestClient(create_app(settings, warm_up="blocking")) as client:
        keys = {}
        for group in ("alpha", "bravo"):
            made = client.post("/admin/keys", json={"name": f"{group} team", "groups": [group]},
                               headers={"Authorization": f"Bearer {admin}"})
            assert made.status_code == 201, made.text
            keys[group] = made.json()["key"]
        ids = {"alpha": _upload(client, admin, "ledger.md", LEDGER, "alpha")["doc_ids"][0],
               "bravo": _upload(client, keys["bravo"], "plans.md", PLANS)["doc_ids"][0]}  # the uploader's groups
        _upload(client, admin, "tides.md", TIDES)
        _upload(client, admin, "accounts.md", ACCOUNTS)
        yield client, keys, admin, ids


def _leaks(text: str, other: str, other_id: str, asked: str = "") -> list[str]:
    """What of the other group's document the response holds, besides the caller's own words echoed back."""
    marker, name, title = MARKERS[other]
    if asked:
        text = text.replace(asked, "")
    return [thing for thing in (marker, name, f'"{title}"', other_id) if thing in text]


def test_no_route_returns_anything_of_another_groups_documents(world):
    client, keys, _, ids = world
    attempts, leaks = 0, []
    for group, other in (("alpha", "bravo"), ("bravo", "alpha")):
        headers = {"Authorization": f"Bearer {keys[group]}"}

        def attempt(response, asked: str = "", *, other=other, group=group):
            nonlocal attempts
            attempts += 1
            leaks.extend(f"{group} saw {thing} via {response.request.url} (asked {asked!r})" for thing in
                         _leaks(response.text, other, ids[other], asked))
            return response

        for question in QUESTIONS:
            for mode in ("extractive", "generative"):
                attempt(client.post("/ask", json={"question": question, "mode": mode}, headers=headers), question)
            attempt(client.post("/search", json={"query": question, "top_k": 10}, headers=headers), question)
            chat = {"model": "extractive", "messages": [{"role": "user", "content": question}]}
            attempt(client.post("/v1/chat/completions", json=chat, headers=headers), question)
            attempt(client.post("/v1/chat/completions", json={**chat, "stream": True}, headers=headers), question)
            follow_up = {"model": "extractive", "messages": [
                {"role": "user", "content": question}, {"role": "assistant", "content": "I do not know."},
                {"role": "user", "content": "And what does it say exactly?"}]}
            attempt(client.post("/v1/chat/completions", json=follow_up, headers=headers), question)
            attempt(client.post("/v1/chat/completions", json={**follow_up, "model": "generative", "stream": True},
                                headers=headers), question)
        listed = attempt(client.get("/documents", headers=headers)).json()
        assert listed["total"] == 3 and len(listed["documents"]) == 3  # its own, tides, accounts
        for path in (f"/documents/{ids[other]}", f"/documents/{ids[other]}?start=0&end=5"):
            assert attempt(client.get(path, headers=headers), ids[other]).status_code == 404  # as if there were none
        assert attempt(client.delete(f"/documents/{ids[other]}", headers=headers), ids[other]).status_code == 404
        own = attempt(client.get(f"/documents/{ids[group]}", headers=headers))
        assert own.status_code == 200 and MARKERS[group][0] in own.json()["text"]
    assert attempts >= 50 and not leaks, leaks


def test_the_owner_and_admin_still_read_them(world):
    client, keys, admin, ids = world
    answer = client.post("/ask", json={"question": "What is the vault code?", "mode": "extractive"},
                         headers={"Authorization": f"Bearer {keys['alpha']}"}).json()
    assert "ALPHA7731" in answer["answer"] and answer["citations"][0]["doc_id"] == ids["alpha"]
    everything = client.get("/documents", headers={"Authorization": f"Bearer {admin}"}).json()
    assert everything["total"] == 4


def test_bm25_statistics_come_from_the_readable_documents_only(world, tmp_path):
    """A restricted search scores exactly as if the hidden documents did not exist (no side channel)."""
    client, keys, admin, _ = world
    query = {"query": "ledger balance", "top_k": 5}

    def accounts_score(response) -> float:
        return next(p["score"] for p in response.json()["passages"] if p["source"].endswith("accounts.md"))

    restricted = accounts_score(client.post("/search", json=query, headers={"Authorization": f"Bearer {keys['bravo']}"}))
    everything = accounts_score(client.post("/search", json=query, headers={"Authorization": f"Bearer {admin}"}))
    clean_settings = make_settings(tmp_path / "clean")
    with TestClient(create_app(clean_settings, warm_up="blocking")) as clean:
        for name, content in (("plans.md", PLANS), ("tides.md", TIDES), ("accounts.md", ACCOUNTS)):
            assert clean.post("/documents", files={"file": (name, content, "text/markdown")}).status_code == 201
        without = accounts_score(clean.post("/search", json=query))
    assert restricted == pytest.approx(without, abs=1e-6)
    assert everything != pytest.approx(without, abs=1e-6), "the hidden document does change the unrestricted scores"


def test_admin_keys_are_managed_over_http_and_rotate_without_restart(world):
    client, keys, admin, _ = world
    as_admin = {"Authorization": f"Bearer {admin}"}
    listed = client.get("/admin/keys", headers=as_admin).json()["keys"]
    assert {k["name"] for k in listed} == {"operator", "alpha team", "bravo team"}
    assert not any("hash" in k or k.get("key") for k in listed), "keys are never shown again"
    assert client.get("/admin/keys", headers={"Authorization": f"Bearer {keys['alpha']}"}).status_code == 403
    alpha_id = next(k["id"] for k in listed if k["name"] == "alpha team")
    rotated = client.post(f"/admin/keys/{alpha_id}/rotate", headers=as_admin).json()["key"]
    old = client.post("/search", json={"query": "vault"}, headers={"Authorization": f"Bearer {keys['alpha']}"})
    assert old.status_code == 401
    new = client.post("/search", json={"query": "vault code"}, headers={"Authorization": f"Bearer {rotated}"})
    assert new.status_code == 200 and "ALPHA7731" in new.text
    assert client.delete(f"/admin/keys/{alpha_id}", headers=as_admin).status_code == 204
    assert client.post("/search", json={"query": "vault"},
                       headers={"Authorization": f"Bearer {rotated}"}).status_code == 401
    stored = json.loads(client.app.state.services.settings.api.keys_file.read_text())
    assert rotated not in json.dumps(stored) and admin not in json.dumps(stored), "only hashes are stored"


def test_an_upload_may_not_give_a_document_to_groups_the_key_is_not_in(world):
    client, keys, _, _ = world
    response = client.post("/documents", files={"file": ("x.md", b"# X\n\nSomething.\n", "text/markdown")},
                           data={"collection": "default", "groups": "bravo"},
                           headers={"Authorization": f"Bearer {keys['alpha']}"})
    assert response.status_code == 403 and "bravo" in response.json()["error"]["message"]
