"""A LangChain retriever over a running service: `RagServiceRetriever(base_url=...).invoke("question")` gives
`Document`s whose metadata say exactly where each passage is (source, doc_id, start, end, pages).

Needs `langchain-core` (`pip install 'rag-service[langchain]'`)."""

from __future__ import annotations

try:
    from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
except ImportError as exc:  # pragma: no cover - the hint is the point
    raise ImportError("the LangChain retriever needs langchain-core: pip install 'rag-service[langchain]'") from exc

from rag.integrations.client import SearchClient, passage_metadata


class RagServiceRetriever(BaseRetriever):
    """Passages from the service's `POST /search` (dense + BM25 retrieval) as LangChain documents."""

    base_url: str = "http://127.0.0.1:8000"
    api_key: str | None = None
    collection: str = "default"
    top_k: int = 5
    sources: list[str] | None = None
    timeout: float = 60.0

    def _client(self) -> SearchClient:
        return SearchClient(self.base_url, self.api_key, self.collection, self.top_k, self.timeout, self.sources)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return [Document(page_content=p["text"], metadata=passage_metadata(p)) for p in self._client().search(query)]

    async def _aget_relevant_documents(self, query: str, *,
                                       run_manager: AsyncCallbackManagerForRetrieverRun) -> list[Document]:
        passages = await self._client().asearch(query)
        return [Document(page_content=p["text"], metadata=passage_metadata(p)) for p in passages]
