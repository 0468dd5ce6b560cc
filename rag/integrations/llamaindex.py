"""A LlamaIndex retriever over a running service: `RagServiceRetriever(base_url=...).retrieve("question")` gives
scored nodes whose metadata say exactly where each passage is (source, doc_id, start, end, pages).

Needs `llama-index-core` (`pip install 'rag-service[llamaindex]'`)."""

from __future__ import annotations

try:
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
except ImportError as exc:  # pragma: no cover - the hint is the point
    raise ImportError("the LlamaIndex retriever needs llama-index-core: pip install 'rag-service[llamaindex]'") from exc

from rag.integrations.client import SearchClient, passage_metadata


def _node(passage: dict) -> NodeWithScore:
    node = TextNode(text=passage["text"], id_=f"{passage['doc_id']}:{passage['start']}-{passage['end']}",
                    metadata=passage_metadata(passage))
    return NodeWithScore(node=node, score=passage["score"])


class RagServiceRetriever(BaseRetriever):
    """Passages from the service's `POST /search` (dense + BM25 retrieval) as LlamaIndex nodes."""

    def __init__(self, base_url: str = "http://127.0.0.1:8000", *, api_key: str | None = None,
                 collection: str = "default", top_k: int = 5, sources: list[str] | None = None,
                 timeout: float = 60.0) -> None:
        super().__init__()
        self.client = SearchClient(base_url, api_key, collection, top_k, timeout, sources)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [_node(p) for p in self.client.search(query_bundle.query_str)]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [_node(p) for p in await self.client.asearch(query_bundle.query_str)]
