"""The one HTTP call both framework retrievers make: `POST /search` of a running service."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx


class RagServiceError(RuntimeError):
    """The service refused or failed a search; the message is the service's own."""


@dataclass
class SearchClient:
    """Where the service is, how to reach it, and what to search by default."""

    base_url: str = "http://127.0.0.1:8000"
    api_key: str | None = None
    collection: str = "default"
    top_k: int = 5
    timeout: float = 60.0
    sources: list[str] | None = field(default=None)

    def _request(self, query: str) -> tuple[str, dict, dict]:
        body = {"query": query, "top_k": self.top_k, "collection": self.collection}
        if self.sources:
            body["sources"] = self.sources
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return f"{self.base_url.rstrip('/')}/search", body, headers

    @staticmethod
    def _passages(response: httpx.Response) -> list[dict]:
        if response.status_code != 200:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:200]
            raise RagServiceError(f"search failed with HTTP {response.status_code}: {message}")
        return response.json()["passages"]

    def search(self, query: str) -> list[dict]:
        """The service's passages for `query` (text, source, doc_id, start, end, pages, heading, title, score)."""
        url, body, headers = self._request(query)
        return self._passages(httpx.post(url, json=body, headers=headers, timeout=self.timeout))

    async def asearch(self, query: str) -> list[dict]:
        url, body, headers = self._request(query)
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            return self._passages(await client.post(url, json=body, headers=headers))


def passage_metadata(passage: dict) -> dict:
    """What a framework document carries beside the text: where the passage is, exactly."""
    return {key: passage[key] for key in ("source", "doc_id", "start", "end", "pages", "heading", "title", "score")}
