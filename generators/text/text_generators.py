"""Text generators behind one small protocol: a local causal LM, or any OpenAI-compatible API.

Both take chat messages (`[{"role": "system"|"user"|"assistant", "content": str}]`)
and return text, whole (`generate`) or as it is produced (`stream`), so a
reader can build one prompt and an HTTP layer can forward the deltas as SSE.
Both also continue a plain prompt (`complete` / `stream_complete`, as GPT-2
does and as OpenAI's `/v1/completions` serves) with sampling settings.
Failures of a remote API surface as `GeneratorError` with a message meant for
users, never as the SDK's traceback.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, runtime_checkable

from generators.resolve import ResolvedModel, resolve_model

if TYPE_CHECKING:
    from openai import OpenAI
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

Message = dict[str, str]


@dataclass(frozen=True)
class Sampling:
    """How a completion is drawn: greedy at temperature 0, else sampled (reproducibly, given a seed)."""

    max_new_tokens: int = 64
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()


T = TypeVar("T")
ErrorKind = Literal["connection", "timeout", "auth", "not_found", "bad_request", "api"]

def is_gguf_model(name: str) -> bool:
    """Whether a generator name means a GGUF model (run by llama.cpp) rather than a transformers one: a .gguf
    file, a folder of GGUF files (no transformers config), or a Hub repo named like one ("…-GGUF")."""
    folder = Path(name).expanduser()
    if folder.is_dir():
        return any(folder.glob("*.gguf")) and not (folder / "config.json").is_file()
    return name.lower().endswith(".gguf") or "gguf" in name.lower().rsplit("/", 1)[-1]


class GeneratorError(RuntimeError):
    """A generator could not produce text; `str(error)` is fit to show a user."""

    def __init__(self, message: str, *, kind: ErrorKind, model: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.model = model


@runtime_checkable
class TextGenerator(Protocol):
    model_name: str

    def generate(
        self,
        messages: Sequence[Message],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> str: ...

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> Iterator[str]: ...

    def complete(self, prompt: str, sampling: Sampling) -> str: ...

    def stream_complete(self, prompt: str, sampling: Sampling) -> Iterator[str]: ...


class StopTrimmer:
    """Cuts a stream of text deltas at the first stop string, holding back text that may begin one."""

    def __init__(self, stop: Sequence[str] | None) -> None:
        self.stop = [s for s in (stop or []) if s]
        self.buffer = ""
        self.stopped = False

    def feed(self, delta: str) -> str:
        if self.stopped:
            return ""
        self.buffer += delta
        if not self.stop:
            out, self.buffer = self.buffer, ""
            return out
        cuts = [i for i in (self.buffer.find(s) for s in self.stop) if i >= 0]
        if cuts:
            self.stopped = True
            out, self.buffer = self.buffer[: min(cuts)], ""
            return out
        # Keep back the longest tail that is a prefix of some stop string.
        hold = 0
        for s in self.stop:
            for n in range(min(len(s) - 1, len(self.buffer)), 0, -1):
                if self.buffer.endswith(s[:n]):
                    hold = max(hold, n)
                    break
        out = self.buffer[: len(self.buffer) - hold]
        self.buffer = self.buffer[len(out) :]
        return out

    def finish(self) -> str:
        out, self.buffer = ("" if self.stopped else self.buffer), ""
        return out


def plain_prompt(messages: Sequence[Message]) -> str:
    """A transcript prompt for models without a chat template (gpt2 and other base LMs)."""
    lines = [f"{m['role'].capitalize()}: {m['content'].strip()}" for m in messages]
    return "\n\n".join(lines) + "\n\nAssistant:"


# Base LMs continue a transcript with the next speaker's turn; end the answer there.
_PLAIN_PROMPT_STOPS = ("\nUser:", "\nSystem:", "\n\nUser", "\n\n\n")


class LocalGenerator:
    """A causal LM through transformers (`AutoModelForCausalLM`), on CPU by default.

    `model` is a Hub name or a local folder (gpt2, or any transformers model);
    GGUF models run on llama.cpp instead (`generators.text.llama_generator`).
    """

    def __init__(
        self,
        model: str,
        *,
        device: str = "cpu",
        gguf_file: str | None = None,
        setting: str | None = None,
    ) -> None:
        self.model_name = model
        self.device = device
        self.gguf_file = gguf_file
        self.setting = setting
        self.resolved: ResolvedModel | None = None
        self._model: PreTrainedModel | None = None
        self._tokenizer: PreTrainedTokenizerBase | None = None
        self._lock = threading.Lock()
        self._sampling_lock = threading.Lock()  # seeded sampling uses torch's global generator: one at a time

    def warm_up(self) -> LocalGenerator:
        """Resolve and load the model and tokenizer (once; later calls return at once)."""
        if self._model is not None:
            return self
        with self._lock:
            if self._model is None:
                self._load()
        return self

    def _load(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        resolved = resolve_model(self.model_name, role="generator", setting=self.setting)
        gguf_file = self.gguf_file or resolved.gguf_file
        kwargs: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
        tokenizer = AutoTokenizer.from_pretrained(str(resolved.path), **kwargs)
        model = AutoModelForCausalLM.from_pretrained(str(resolved.path), **kwargs)
        model.to(self.device)
        model.eval()
        if tokenizer.pad_token_id is None:  # gpt2 has none; generate() warns without one
            tokenizer.pad_token = tokenizer.eos_token
        self.resolved = resolved
        self._tokenizer = tokenizer
        self._model = model

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        self.warm_up()
        assert self._tokenizer is not None
        return self._tokenizer

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def _encode(self, messages: Sequence[Message], max_new_tokens: int) -> dict[str, Any]:
        tokenizer = self.tokenizer
        if self.has_chat_template:
            prompt = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
            ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
        else:
            ids = tokenizer(plain_prompt(messages), return_tensors="pt")["input_ids"]
        return self._fit(ids, max_new_tokens)

    def _encode_text(self, prompt: str, max_new_tokens: int) -> dict[str, Any]:
        """A plain prompt to continue, as it is (no chat template)."""
        import torch

        ids = self.tokenizer(prompt, return_tensors="pt")["input_ids"]
        if ids.shape[1] == 0:  # an empty prompt: start a new document, as GPT-2 does after <|endoftext|>
            start = self.tokenizer.bos_token_id if self.tokenizer.bos_token_id is not None else self.tokenizer.eos_token_id
            ids = torch.tensor([[start]])
        return self._fit(ids, max_new_tokens)

    def _fit(self, ids: Any, max_new_tokens: int) -> dict[str, Any]:
        import torch

        limit = self._context_limit()
        if limit is not None and ids.shape[1] + max_new_tokens > limit:
            # Keep the end of the prompt: the question and the generation cue sit there.
            keep = max(limit - max_new_tokens, 1)
            log.warning("Prompt of %d tokens cut to its last %d to fit %s's context", ids.shape[1], keep, self.model_name)
            ids = ids[:, -keep:]
        return {"input_ids": ids.to(self.device), "attention_mask": torch.ones_like(ids).to(self.device)}

    def _context_limit(self) -> int | None:
        assert self._model is not None
        config = self._model.config
        for name in ("max_position_embeddings", "n_positions", "n_ctx"):
            value = getattr(config, name, None)
            if isinstance(value, int) and value > 0:
                return value
        return None

    def _stops(self, stop: Sequence[str] | None) -> list[str]:
        stops = list(stop or [])
        if not self.has_chat_template:
            stops.extend(_PLAIN_PROMPT_STOPS)
        return stops

    def _generate_kwargs(self, inputs: dict[str, Any], max_new_tokens: int, temperature: float, stops: list[str],
                         top_p: float = 1.0) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            **inputs,
            "max_new_tokens": max_new_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=top_p, top_k=0)
        else:  # greedy: reproducible answers by default
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if stops:
            kwargs.update(stop_strings=stops, tokenizer=self.tokenizer)
        return kwargs

    def generate(
        self,
        messages: Sequence[Message],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> str:
        self.warm_up()
        stops = self._stops(stop)
        return self._run(self._generate_kwargs(self._encode(messages, max_new_tokens), max_new_tokens, temperature,
                                               stops), stops, None)

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> Iterator[str]:
        """Text deltas as the model produces them; closing the iterator stops generation."""
        self.warm_up()
        stops = self._stops(stop)
        yield from self._stream(self._generate_kwargs(self._encode(messages, max_new_tokens), max_new_tokens,
                                                      temperature, stops), stops, None)

    def complete(self, prompt: str, sampling: Sampling) -> str:
        """The model's continuation of `prompt` (not including it)."""
        self.warm_up()
        stops = list(sampling.stop)
        inputs = self._encode_text(prompt, sampling.max_new_tokens)
        kwargs = self._generate_kwargs(inputs, sampling.max_new_tokens, sampling.temperature, stops, sampling.top_p)
        return self._run(kwargs, stops, sampling.seed, strip=False)

    def stream_complete(self, prompt: str, sampling: Sampling) -> Iterator[str]:
        self.warm_up()
        stops = list(sampling.stop)
        inputs = self._encode_text(prompt, sampling.max_new_tokens)
        kwargs = self._generate_kwargs(inputs, sampling.max_new_tokens, sampling.temperature, stops, sampling.top_p)
        yield from self._stream(kwargs, stops, sampling.seed, strip=False)

    def _seeded(self, seed: int | None):
        """A context in which sampling is reproducible: torch's global generator, seeded, held by one caller."""
        import contextlib

        import torch

        if seed is None:
            return contextlib.nullcontext()

        @contextlib.contextmanager
        def held():
            with self._sampling_lock, torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                yield

        return held()

    def _run(self, kwargs: dict[str, Any], stops: list[str], seed: int | None, *, strip: bool = True) -> str:
        import torch

        assert self._model is not None
        prompt_tokens = kwargs["input_ids"].shape[1]
        with torch.inference_mode(), self._seeded(seed):
            output = self._model.generate(**kwargs)
        text = self.tokenizer.decode(output[0, prompt_tokens:], skip_special_tokens=True)
        trimmer = StopTrimmer(stops)
        text = trimmer.feed(text) + trimmer.finish()
        return text.strip() if strip else text

    def _stream(self, kwargs: dict[str, Any], stops: list[str], seed: int | None, *, strip: bool = True) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        assert self._model is not None
        cancelled = threading.Event()

        class _Cancelled(StoppingCriteria):
            # The consumer went away (e.g. an SSE client disconnected): stop spending CPU.
            def __call__(self, input_ids, scores, **kwargs):  # noqa: ANN001, ANN003
                return torch.full((input_ids.shape[0],), cancelled.is_set(), dtype=torch.bool, device=input_ids.device)

        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        kwargs = {**kwargs, "streamer": streamer, "stopping_criteria": StoppingCriteriaList([_Cancelled()])}
        failure: list[BaseException] = []

        def run() -> None:
            try:
                with torch.inference_mode(), self._seeded(seed):
                    self._model.generate(**kwargs)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer's thread
                failure.append(exc)
                streamer.end()

        worker = threading.Thread(target=run, name="local-generator-stream", daemon=True)
        worker.start()
        trimmer = StopTrimmer(stops)
        started = not strip  # a chat answer drops its leading spaces; a continuation keeps them
        exhausted = False
        try:
            for piece in streamer:
                out = trimmer.feed(piece)
                if not started:
                    out = out.lstrip()
                    started = bool(out)
                if out:
                    yield out
                if trimmer.stopped:
                    break
            else:
                exhausted = True
            tail = trimmer.finish()
            if not started:
                tail = tail.lstrip()
            if strip:
                tail = tail.rstrip()
            if tail:
                yield tail
        finally:
            cancelled.set()
            if not exhausted:  # drain up to the end signal, so the worker never blocks on the queue
                for _ in streamer:
                    pass
            worker.join()
        if failure:
            raise failure[0]


class OpenAIGenerator:
    """Any OpenAI-compatible chat-completions endpoint through the official `openai` SDK.

    `api_key` and `base_url` default to the SDK's own `OPENAI_API_KEY` and
    `OPENAI_BASE_URL`. A self-hosted server (a custom base URL) often needs no
    key, so a placeholder is sent when none is set there.
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
    ) -> None:
        self.model_name = model
        self.api_key = api_key
        self.base_url = base_url
        self.timeout = timeout
        self.max_retries = max_retries
        self._client: OpenAI | None = None
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return self.base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"

    def warm_up(self) -> OpenAIGenerator:
        """Build the client (no request is sent)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make_client()
        return self

    def _make_client(self) -> OpenAI:
        import openai

        api_key = self.api_key or os.environ.get("OPENAI_API_KEY")
        custom_endpoint = bool(self.base_url or os.environ.get("OPENAI_BASE_URL"))
        if not api_key and custom_endpoint:
            api_key = "no-key-required"
        try:
            return openai.OpenAI(api_key=api_key, base_url=self.base_url, timeout=self.timeout, max_retries=self.max_retries)
        except openai.OpenAIError as exc:
            raise GeneratorError(
                f"No API key for the OpenAI generator {self.model_name!r}: set OPENAI_API_KEY "
                f"(or OPENAI_BASE_URL to a server that needs none). ({exc})",
                kind="auth",
                model=self.model_name,
            ) from None

    def _request(self, messages: Sequence[Message], max_new_tokens: int, temperature: float, stop: Sequence[str] | None) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": self.model_name,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "max_tokens": max_new_tokens,
            "temperature": temperature,
        }
        if stop:
            request["stop"] = list(stop)[:4]  # the API accepts at most four
        return request

    def _error(self, exc: Exception) -> GeneratorError:
        """The SDK's exception as a one-line message that says what to check."""
        import openai

        where = f"{self.endpoint} (model {self.model_name!r})"
        if isinstance(exc, openai.APITimeoutError):
            return GeneratorError(f"The generator API at {where} did not answer within {self.timeout:g} s.", kind="timeout", model=self.model_name)
        if isinstance(exc, openai.APIConnectionError):
            return GeneratorError(
                f"Cannot reach the generator API at {where}: is the server running, and is OPENAI_BASE_URL right?",
                kind="connection",
                model=self.model_name,
            )
        if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
            return GeneratorError(f"The generator API at {where} refused the API key (check OPENAI_API_KEY).", kind="auth", model=self.model_name)
        if isinstance(exc, openai.NotFoundError):
            return GeneratorError(f"The generator API at {where} does not know that model or path.", kind="not_found", model=self.model_name)
        if isinstance(exc, openai.BadRequestError):
            return GeneratorError(f"The generator API at {where} rejected the request: {_api_message(exc)}", kind="bad_request", model=self.model_name)
        if isinstance(exc, openai.APIStatusError):
            return GeneratorError(
                f"The generator API at {where} failed with HTTP {exc.status_code}: {_api_message(exc)}", kind="api", model=self.model_name
            )
        return GeneratorError(f"The generator API at {where} failed: {exc}", kind="api", model=self.model_name)

    def generate(
        self,
        messages: Sequence[Message],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> str:
        request = self._request(messages, max_new_tokens, temperature, stop)
        completion = self._api(lambda client: client.chat.completions.create(**request))
        return (self._first_choice(completion).message.content or "").strip()

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> Iterator[str]:
        request = self._request(messages, max_new_tokens, temperature, stop)
        started = False
        for chunk in self._chunks(lambda client: client.chat.completions.create(**request, stream=True)):
            if not chunk.choices:
                continue
            delta = chunk.choices[0].delta.content or ""
            if not started:
                delta = delta.lstrip()
                started = bool(delta)
            if delta:
                yield delta

    def _api(self, call: Callable[[Any], T]) -> T:
        """`call(client)` with the client warmed up, and the SDK's errors as `GeneratorError`s that say what to do."""
        import openai

        client = self.warm_up()._client
        assert client is not None
        try:
            return call(client)
        except openai.OpenAIError as exc:
            raise self._error(exc) from None

    def _chunks(self, call: Callable[[Any], Any]) -> Iterator[Any]:
        """The chunks of the stream `call(client)` opens, closed when the caller stops; errors as in `_api`."""
        import openai

        chunks = self._api(call)
        try:
            with chunks:
                yield from chunks
        except openai.OpenAIError as exc:
            raise self._error(exc) from None

    def _first_choice(self, completion: Any) -> Any:
        if not completion.choices:
            raise GeneratorError(f"The generator API at {self.endpoint} returned no choices.", kind="api",
                                 model=self.model_name)
        return completion.choices[0]

    def _completion_request(self, prompt: str, sampling: Sampling) -> dict[str, Any]:
        request: dict[str, Any] = {"model": self.model_name, "prompt": prompt, "max_tokens": sampling.max_new_tokens,
                                   "temperature": sampling.temperature, "top_p": sampling.top_p}
        if sampling.seed is not None:
            request["seed"] = sampling.seed
        if sampling.stop:
            request["stop"] = list(sampling.stop)[:4]
        return request

    def complete(self, prompt: str, sampling: Sampling) -> str:
        """The API's continuation of `prompt` (the legacy `/v1/completions` endpoint)."""
        request = self._completion_request(prompt, sampling)
        return self._first_choice(self._api(lambda client: client.completions.create(**request))).text or ""

    def stream_complete(self, prompt: str, sampling: Sampling) -> Iterator[str]:
        request = self._completion_request(prompt, sampling)
        for chunk in self._chunks(lambda client: client.completions.create(**request, stream=True)):
            if chunk.choices and chunk.choices[0].text:
                yield chunk.choices[0].text


def _api_message(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return str(getattr(exc, "message", exc))
