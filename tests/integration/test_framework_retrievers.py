"""The LangChain and LlamaIndex retrievers of `rag.integrations` against a real `rag serve` on loopback."""

from __future__ import annotations

import asyncio

import pytest

from rag.integrations.client import RagServiceError

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_langchain_retriever_returns_passages_with_their_spans(api_url):
    from rag.integrations.langchain import RagServiceRetriever

    retriever = RagServiceRetriever(base_url=api_url, top_k=2)
    documents = retriever.invoke("What causes ocean tides?")
    assert len(documents) == 2 and "Moon" in documents[0].page_content
    metadata = documents[0].metadata
    assert metadata["source"].endswith("tides.md") and metadata["end"] > metadata["start"] >= 0
    assert asyncio.run(retriever.ainvoke("What causes ocean tides?"))[0].page_content == documents[0].page_content
    with pytest.raises(RagServiceError, match="no collection|404"):
        RagServiceRetriever(base_url=api_url, collection="no-such-collection").invoke("tides")


def test_llamaindex_retriever_returns_scored_nodes(api_url):
    from rag.integrations.llamaindex import RagServiceRetriever

    retriever = RagServiceRetriever(api_url, top_k=3)
    nodes = retriever.retrieve("Who built the Bell Rock lighthouse?")
    assert len(nodes) == 3 and "Robert Stevenson" in nodes[0].node.get_content()
    assert nodes[0].score >= nodes[1].score and nodes[0].node.metadata["source"].endswith("lighthouse.md")
    again = asyncio.run(retriever.aretrieve("Who built the Bell Rock lighthouse?"))
    assert [n.node.node_id for n in again] == [n.node.node_id for n in nodes]
