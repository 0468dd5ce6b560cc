"""The MCP server through the official `mcp` SDK's client, against real server processes: `rag serve` (streamable
HTTP at /mcp) and `rag mcp` (stdio), with the API keys and collections of the HTTP API."""

from __future__ import annotations

import json
import os
import shutil
import sys

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from rag.api.schemas import AskRequest, DocumentPage, DocumentText, SearchRequest, SearchResult
from rag.chain import AskResponse
from tests.integration.conftest import serving

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEYS = {"ocean-key": ["oceans"], "admin-key": ["*"]}


def _client(url: str, key: str | None = None) -> Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return Client(streamable_http_client(f"{url}/mcp", http_client=httpx2.AsyncClient(headers=headers, timeout=120)))


def _run(scenario) -> None:
    anyio.run(scenario)


async def _tools(client: Client) -> dict:
    return {tool.name: tool for tool in (await client.list_tools()).tools}


async def _call(client: Client, tool: str, arguments: dict) -> dict:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    return result.structured_content


async def _error(client: Client, tool: str, arguments: dict) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error
    return result.content[0].text


def test_every_tool_over_http_answers_from_the_documents(api_url):
    async def scenario():
        async with _client(api_url) as client:
            tools = await _tools(client)
            assert {"search", "ask", "list_documents", "get_document"} <= set(tools)
            assert "ingest" not in tools, "ingest is off unless RAG_API__MCP_INGEST"
            found = await _call(client, "search", {"query": "What causes ocean tides?", "top_k": 2})
            top = found["passages"][0]
            assert top["source"].endswith("tides.md") and "Moon" in top["text"]
            answer = await _call(client, "ask", {"question": "What causes ocean tides?", "mode": "extractive"})
            assert not answer["abstained"] and "Moon" in answer["answer"]
            cited = answer["citations"][0]
            documents = await _call(client, "list_documents", {})
            assert documents["total"] >= 3 and any(d["doc_id"] == cited["doc_id"] for d in documents["documents"])
            span = await _call(client, "get_document", {"doc_id": cited["doc_id"], "start": cited["start"],
                                                        "end": cited["end"]})
            assert span["text"] == cited["text"] and span["start"] == cited["start"]
            resource = await client.read_resource(f"document://default/{cited['doc_id']}")
            assert "gravitational pull of the Moon" in resource.contents[0].text
            unknown = await _error(client, "get_document", {"doc_id": "no-such-doc"})
            assert "no document" in unknown

    _run(scenario)


def test_tool_schemas_are_the_http_api_models(api_url):
    """A tool takes the fields of the HTTP request model and returns the HTTP response model."""
    async def scenario():
        async with _client(api_url) as client:
            tools = await _tools(client)
        return tools

    tools = anyio.run(scenario)
    for name, request, response in (("search", SearchRequest, SearchResult), ("ask", AskRequest, AskResponse)):
        assert set(tools[name].input_schema["properties"]) == set(request.model_fields)
        assert set(tools[name].output_schema["properties"]) == set(response.model_fields)
    assert set(tools["list_documents"].output_schema["properties"]) == set(DocumentPage.model_fields)
    assert set(tools["get_document"].output_schema["properties"]) == set(DocumentText.model_fields)
    openapi = httpx.get(f"{api_url}/openapi.json").json()["components"]["schemas"]
    assert set(openapi["SearchRequest"]["properties"]) == set(tools["search"].input_schema["properties"])


@pytest.fixture(scope="module")
def keyed_url(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("mcp-keys"), upload_key="admin-key", RAG_API__KEYS=json.dumps(KEYS),
                 RAG_API__MCP_INGEST="true") as url:
        yield url


def test_keys_decide_the_collections_and_ingest_needs_it_on(keyed_url):
    async def scenario():
        async with _client(keyed_url) as anonymous:
            assert "API key is required" in await _error(anonymous, "search", {"query": "tides"})
        async with _client(keyed_url, "wrong-key") as wrong:
            assert "invalid API key" in await _error(wrong, "ask", {"question": "What causes tides?"})
        async with _client(keyed_url, "ocean-key") as ocean:
            assert "ingest" in await _tools(ocean)
            refused = await _error(ocean, "search", {"query": "tides", "collection": "default"})
            assert "may not use the collection 'default'" in refused
            added = await _call(ocean, "ingest", {"name": "reefs.md", "collection": "oceans",
                                                  "content": "# Reefs\n\nCoral reefs grow in warm shallow seas.\n"})
            assert added["chunks_added"] >= 1
            found = await _call(ocean, "search", {"query": "Where do coral reefs grow?", "collection": "oceans"})
            assert "warm shallow seas" in found["passages"][0]["text"]
            path = await _error(ocean, "ingest", {"name": "passwd.txt", "collection": "oceans",
                                                  "path": "/etc/passwd"})
            assert "only accepted over stdio" in path
        async with _client(keyed_url, "admin-key") as admin:
            listed = await _call(admin, "list_documents", {"collection": "default"})
            assert listed["total"] == 3

    _run(scenario)


def test_rag_mcp_serves_the_same_tools_over_stdio(api_url, tmp_path):
    """`rag mcp` as a desktop client starts it: a subprocess speaking MCP on stdin/stdout, over the same index."""
    index = tmp_path / "stdio-index"
    rag = shutil.which("rag", path=os.path.dirname(sys.executable)) or "rag"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "lighthouse.md").write_text("# Lighthouse\n\nThe Bell Rock lighthouse was built by Robert Stevenson.\n")
    import subprocess

    subprocess.run([rag, "ingest", str(docs), "--index", str(index)], check=True, capture_output=True,
                   env={**os.environ, "HF_HUB_OFFLINE": "1"})
    params = StdioServerParameters(command=rag, args=["mcp", "--index", str(index)],
                                   env={"HF_HUB_OFFLINE": "1", "RAG_API__MCP_INGEST": "true",
                                        "RAG_READER__MODEL": "no-such-org/no-such-reader"})

    async def scenario():
        async with Client(params, read_timeout_seconds=300) as client:
            tools = await _tools(client)
            assert {"search", "ask", "list_documents", "get_document", "ingest"} <= set(tools)
            answer = await _call(client, "ask", {"question": "Who built the Bell Rock lighthouse?",
                                                 "mode": "extractive"})
            assert "Robert Stevenson" in answer["answer"] and answer["citations"]
            cited = answer["citations"][0]
            listed = await _call(client, "list_documents", {})
            assert [d["source"].rsplit("/", 1)[-1] for d in listed["documents"]] == ["lighthouse.md"]
            span = await _call(client, "get_document", {"doc_id": cited["doc_id"], "start": cited["start"],
                                                        "end": cited["end"]})
            assert span["text"] == cited["text"]
            resource = await client.read_resource(f"document://default/{cited['doc_id']}")
            assert "Robert Stevenson" in resource.contents[0].text
            notes = tmp_path / "notes.md"
            notes.write_text("# Tides\n\nSpring tides happen at new and full moon.\n")
            added = await _call(client, "ingest", {"name": "notes.md", "path": str(notes)})
            assert added["chunks_added"] >= 1
            found = await _call(client, "search", {"query": "When do spring tides happen?"})
            assert "new and full moon" in found["passages"][0]["text"]

    _run(scenario)


def test_group_keys_read_only_their_documents_through_the_tools(tmp_path_factory):
    from rag.api.keys import KeyStore

    folder = tmp_path_factory.mktemp("mcp-groups")
    store = KeyStore(folder / "keys.json")
    _, admin = store.create("operator", admin=True)
    alpha = store.create("alpha", groups=("alpha",))[1]
    with serving(folder, upload_key=admin) as url:
        secret = httpx.post(f"{url}/documents", files={"file": ("vault.md", b"# Vault\n\nThe vault code is BRAVO5512.\n",
                                                                "text/markdown")},
                            data={"groups": "bravo"}, headers={"Authorization": f"Bearer {admin}"}, timeout=120).json()

        async def scenario():
            async with _client(url, alpha) as client:
                results = [
                    await _call(client, "search", {"query": "What is the vault code?", "top_k": 10}),
                    await _call(client, "ask", {"question": "What is the vault code?", "mode": "extractive"}),
                    await _call(client, "list_documents", {}),
                ]
                missing = await _error(client, "get_document", {"doc_id": secret["doc_ids"][0]})
                assert "no document" in missing
                with pytest.raises(Exception):  # noqa: B017 - the SDK raises its own error type for a failed read
                    await client.read_resource(f"document://default/{secret['doc_ids'][0]}")
            return results

        results = anyio.run(scenario)
    assert results[2]["total"] == 3
    assert not any("BRAVO5512" in json.dumps(r) or "vault.md" in json.dumps(r) for r in results)
