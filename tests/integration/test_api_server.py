"""The API served by `rag serve` (uvicorn) on loopback, used by real clients: the official `openai`
SDK, streaming and not, and LangChain's `ChatOpenAI`."""

from __future__ import annotations

import httpx
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def openai_client(api_url):
    from openai import OpenAI

    return OpenAI(base_url=f"{api_url}/v1", api_key="unused", max_retries=0, timeout=120)


def test_the_openai_sdk_gets_a_cited_answer(openai_client):
    completion = openai_client.chat.completions.create(
        model="extractive", messages=[{"role": "user", "content": "What causes ocean tides?"}])
    content = completion.choices[0].message.content
    assert "Moon" in content and "[1]" in content
    citations = completion.model_extra["citations"]
    assert citations[0]["index"] == 1 and citations[0]["source"].endswith("tides.md")
    assert completion.model_extra["rag"]["abstained"] is False


def test_the_openai_sdk_streams_the_answer_and_the_citations_come_last(openai_client):
    stream = openai_client.chat.completions.create(
        model="extractive", stream=True,
        messages=[{"role": "user", "content": "How do honey bees communicate the direction of flowers?"}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "waggle dance" in text and text.endswith("[1]")
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["citations"][0]["source"].endswith("bees.md")


def test_the_openai_sdk_sees_models_and_errors(openai_client):
    import openai

    assert [m.id for m in openai_client.models.list()][:2] == ["extractive", "generative"]
    with pytest.raises(openai.NotFoundError):
        openai_client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.UnprocessableEntityError):
        openai_client.chat.completions.create(model="extractive", messages=[])


def test_follow_ups_through_the_sdk(openai_client):
    completion = openai_client.chat.completions.create(model="extractive", messages=[
        {"role": "user", "content": "Tell me about the Bell Rock lighthouse."},
        {"role": "assistant", "content": "It stands off the coast of Angus. [1]"},
        {"role": "user", "content": "Who built it?"},
    ])
    assert "Stevenson" in completion.choices[0].message.content


def test_langchain_chat_openai_talks_to_the_service(api_url):
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(base_url=f"{api_url}/v1", api_key="unused", model="extractive", max_retries=0, timeout=120)
    reply = chat.invoke("What causes ocean tides?")
    assert "Moon" in reply.content
    streamed = "".join(chunk.content for chunk in chat.stream("How do honey bees communicate the direction of flowers?"))
    assert "waggle dance" in streamed


def test_the_server_answers_while_it_ingests(api_url):
    """An upload and questions at once: every question is answered from a whole snapshot."""
    from concurrent.futures import ThreadPoolExecutor

    big = b"# Notes\n\n" + b"".join(f"Note {i} is about item {i} and nothing else.\n\n".encode() for i in range(300))

    def ask() -> int:
        return httpx.post(f"{api_url}/ask", json={"question": "What causes ocean tides?"}, timeout=120).status_code

    with ThreadPoolExecutor(4) as pool:
        upload = pool.submit(httpx.post, f"{api_url}/documents",
                             files={"file": ("notes.md", big, "text/markdown")}, timeout=300)
        statuses = [pool.submit(ask) for _ in range(12)]
        assert [s.result() for s in statuses] == [200] * 12
        assert upload.result().status_code == 201
    assert httpx.get(f"{api_url}/documents", timeout=30).json()["total"] == 4
