"""Generator plumbing: a tiny random-weight causal LM loaded through from_pretrained, API errors, GGUF resolution."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from generators.text.generative_reader import GenerativeReader
from generators.text.llama_generator import LlamaCppGenerator
from generators.model_names import GENERATOR
from generators.packaged_gguf import QWEN25_CODER_05B
from generators.text.reading import ReaderPassage
from generators.resolve import ModelUnavailableError, resolve_model
from tests.tiny_models import build_tiny_causal_lm
from generators.text.text_generators import (
    GeneratorError,
    LocalGenerator,
    OpenAIGenerator,
    Sampling,
    StopTrimmer,
    TextGenerator,
    plain_prompt,
)

CHAT_TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<assistant> {% endif %}"
)
MESSAGES = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "Where is the Eiffel Tower?"},
]


@pytest.fixture(scope="module")
def tiny_chat_lm_dir(tmp_path_factory):
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-gpt2-chat"), chat_template=CHAT_TEMPLATE)


@pytest.fixture(scope="module")
def tiny_generator(tiny_lm_dir):
    return LocalGenerator(str(tiny_lm_dir)).warm_up()


def test_constructors_are_cheap_and_satisfy_the_protocol():
    local = LocalGenerator("someone/not-a-model")  # resolution waits for first use
    remote = OpenAIGenerator("any-model", base_url="http://127.0.0.1:9/v1")
    assert isinstance(local, TextGenerator) and isinstance(remote, TextGenerator)
    assert local.resolved is None


def test_an_unresolvable_model_names_the_setting():
    with pytest.raises(ModelUnavailableError, match="RAG_GENERATOR__MODEL"):
        LocalGenerator("someone/not-a-model", setting="RAG_GENERATOR__MODEL").warm_up()


def test_plain_prompt_for_models_without_a_chat_template():
    assert plain_prompt(MESSAGES) == "System: Answer briefly.\n\nUser: Where is the Eiffel Tower?\n\nAssistant:"


def test_local_generation_is_greedy_and_streams_the_same_text(tiny_generator):
    assert not tiny_generator.has_chat_template
    first = tiny_generator.generate(MESSAGES, max_new_tokens=8)
    assert isinstance(first, str) and first == first.strip()
    assert tiny_generator.generate(MESSAGES, max_new_tokens=8) == first  # greedy by default
    pieces = list(tiny_generator.stream(MESSAGES, max_new_tokens=8))
    assert "".join(pieces).strip() == first


def test_sampling_runs(tiny_generator):
    assert isinstance(tiny_generator.generate(MESSAGES, max_new_tokens=4, temperature=0.8), str)


def test_completion_continues_the_prompt_and_a_seed_makes_sampling_reproducible(tiny_generator):
    greedy = Sampling(max_new_tokens=6, temperature=0.0)
    text = tiny_generator.complete("Once upon a time", greedy)
    assert isinstance(text, str) and text and "Once upon" not in text  # the continuation only
    assert "".join(tiny_generator.stream_complete("Once upon a time", greedy)) == text
    seeded = Sampling(max_new_tokens=12, temperature=1.5, top_p=0.95, seed=7)
    first = tiny_generator.complete("Once upon a time", seeded)
    assert tiny_generator.complete("Once upon a time", seeded) == first
    assert "".join(tiny_generator.stream_complete("Once upon a time", seeded)) == first
    others = {tiny_generator.complete("Once upon a time", Sampling(max_new_tokens=12, temperature=1.5, seed=s))
              for s in range(1, 6)}
    assert len(others) > 1  # different seeds draw different continuations
    assert isinstance(tiny_generator.complete("", greedy), str)  # an empty prompt starts a new text


def test_chat_template_is_used_when_the_tokenizer_has_one(tiny_chat_lm_dir):
    generator = LocalGenerator(str(tiny_chat_lm_dir))
    assert generator.has_chat_template
    encoded = generator._encode(MESSAGES, max_new_tokens=4)
    prompt = generator.tokenizer.decode(encoded["input_ids"][0])
    assert "< system >" in prompt and prompt.rstrip().endswith("< assistant >")
    assert isinstance(generator.generate(MESSAGES, max_new_tokens=4), str)


def test_a_prompt_longer_than_the_context_keeps_its_end(tiny_generator):
    long_messages = [{"role": "user", "content": "word " * 400 + "final question?"}]
    encoded = tiny_generator._encode(long_messages, max_new_tokens=16)
    assert encoded["input_ids"].shape[1] == 96 - 16
    assert "question" in tiny_generator.tokenizer.decode(encoded["input_ids"][0])
    assert isinstance(tiny_generator.generate(long_messages, max_new_tokens=16), str)


def test_closing_a_stream_early_stops_the_generation_thread(tiny_generator):
    before = threading.active_count()
    stream = tiny_generator.stream(MESSAGES, max_new_tokens=60)
    next(stream, None)
    stream.close()
    deadline = time.monotonic() + 10
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() == before


def test_generative_reader_over_a_local_generator(tiny_generator):
    document = "Intro line.\n\nThe Eiffel Tower is in Paris. It was finished in 1889."
    passage = ReaderPassage(key=1, text=document[13:], offset=13)
    reader = GenerativeReader(tiny_generator, max_new_tokens=8)
    result = reader.run("Where is the Eiffel Tower?", [passage])
    assert result.answer_type == "generated"
    for span in result.spans:  # random weights: any citation it gets must still be an exact span
        assert document[span.start : span.end] == span.text
    *deltas, streamed = reader.stream("Where is the Eiffel Tower?", [passage])
    assert streamed == result


@pytest.mark.parametrize(
    ("pieces", "stop", "expected"),
    [
        (["Paris", " is", "\nUser:", " more"], ["\nUser:"], "Paris is"),
        (["Paris\nUs", "er: next"], ["\nUser:"], "Paris"),
        (["Paris\nUs", "eful"], ["\nUser:"], "Paris\nUseful"),
        (["a", "b", "c"], None, "abc"),
        (["ab", "cSTOPd"], ["STOP", "cS"], "ab"),
    ],
)
def test_stop_trimmer(pieces, stop, expected):
    trimmer = StopTrimmer(stop)
    assert "".join(trimmer.feed(p) for p in pieces) + trimmer.finish() == expected


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_openai_generator_on_a_closed_port_fails_clearly():
    port = _closed_port()
    generator = OpenAIGenerator("smollm2", base_url=f"http://127.0.0.1:{port}/v1", timeout=5, max_retries=0)
    with pytest.raises(GeneratorError) as caught:
        generator.generate(MESSAGES)
    assert caught.value.kind == "connection" and caught.value.model == "smollm2"
    assert f"127.0.0.1:{port}" in str(caught.value) and "OPENAI_BASE_URL" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # no SDK traceback chained
    with pytest.raises(GeneratorError, match="Cannot reach"):
        list(generator.stream(MESSAGES))


def test_openai_generator_timeout_is_reported_as_such():
    with socket.socket() as server:  # accepts connections (backlog) but never answers
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        port = server.getsockname()[1]
        generator = OpenAIGenerator("smollm2", base_url=f"http://127.0.0.1:{port}/v1", timeout=0.5, max_retries=0)
        with pytest.raises(GeneratorError) as caught:
            generator.generate(MESSAGES)
    assert caught.value.kind == "timeout" and "0.5 s" in str(caught.value)


def test_openai_generator_without_a_key_for_the_default_endpoint(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(GeneratorError, match="OPENAI_API_KEY") as caught:
        OpenAIGenerator("gpt-4o-mini").generate(MESSAGES)
    assert caught.value.kind == "auth"


def test_openai_generator_honours_the_sdk_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    generator = OpenAIGenerator("smollm2").warm_up()  # a self-hosted endpoint needs no key
    assert str(generator._client.base_url).startswith("http://127.0.0.1:9/v1")
    assert generator.endpoint == "http://127.0.0.1:9/v1"


def test_the_default_generator_resolves_offline_to_the_packaged_gguf(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    resolved = resolve_model(GENERATOR.name, role="generator", setting="RAG_GENERATOR__MODEL",
                             gguf_file=GENERATOR.file)
    if resolved.source == "hub":  # only where the Hugging Face cache already holds it
        pytest.skip("the default generator is in the local Hugging Face cache")
    assert resolved.source == "package"
    assert resolved.gguf_file == GENERATOR.file
    assert (resolved.path / resolved.gguf_file).stat().st_size == QWEN25_CODER_05B.size


def test_a_gguf_file_path_resolves_locally(tmp_path):
    gguf = tmp_path / "model.Q4_0.gguf"
    gguf.write_bytes(b"GGUF")
    resolved = resolve_model(str(gguf), role="generator", setting="RAG_GENERATOR__MODEL")
    assert resolved.source == "local" and resolved.path == tmp_path.resolve() and resolved.gguf_file == gguf.name


@pytest.mark.slow
def test_packaged_gguf_generates_streams_and_answers_with_a_citation(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    generator = LlamaCppGenerator(GENERATOR.name, gguf_file=GENERATOR.file,
                                  context_tokens=2048).warm_up()
    reply = generator.generate([{"role": "user", "content": "What is the capital of France?"}], max_new_tokens=12)
    assert "Paris" in reply
    pieces = list(generator.stream([{"role": "user", "content": "What is the capital of France?"}], max_new_tokens=12))
    assert len(pieces) > 1 and "".join(pieces).strip() == reply  # token by token, same greedy text
    stream = generator.stream([{"role": "user", "content": "Count from 1 to 500."}], max_new_tokens=1000)
    next(stream)
    stream.close()  # stops llama.cpp; the next request is served at once
    assert generator.complete("The capital of France is", Sampling(max_new_tokens=6, temperature=0)).strip()
    document = "Notes.\n\nParis is the capital of France. It lies on the Seine."
    passage = ReaderPassage(key=3, text=document[8:], offset=8)
    result = GenerativeReader(generator, max_new_tokens=40).run("What is the capital of France?", [passage])
    assert "Paris" in result.answer and result.spans
    assert all(document[s.start : s.end] == s.text for s in result.spans)


def test_without_xllamacpp_loading_a_gguf_says_how_to_install_it(monkeypatch, tmp_path):
    import builtins

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    real_import = builtins.__import__

    def no_xllamacpp(name, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        if name == "xllamacpp":
            raise ImportError("No module named 'xllamacpp'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_xllamacpp)
    with pytest.raises(ImportError, match="pip install xllamacpp"):
        LlamaCppGenerator(str(gguf)).warm_up()
