"""A GGUF model on llama.cpp, in process, through `xllamacpp` (prebuilt wheels: nothing compiles at install).

`xllamacpp.Server` is llama.cpp's own server: it applies the model's chat
template, keeps the KV cache of the last prompt per slot (so a fixed system
prompt is evaluated once, then reused), and answers OpenAI-shaped requests
as Python dicts. Streaming arrives through a callback on llama.cpp's thread;
`stream()` turns it into an iterator, and closing the iterator stops the
generation (the callback returns True).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generators.resolve import ResolvedModel, resolve_model
from generators.text.text_generators import GeneratorError, Message, Sampling

if TYPE_CHECKING:
    import xllamacpp

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install xllamacpp"
_END = object()


def default_threads() -> int:
    """llama.cpp threads: every core this process may use (2 on the machines this project is built on)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


def import_xllamacpp():  # noqa: ANN201 - the module
    """The `xllamacpp` module, or an ImportError that says how to install it."""
    try:
        import xllamacpp
    except ImportError as exc:
        raise ImportError(f"GGUF models run on llama.cpp through xllamacpp, which is not installed ({INSTALL_HINT})") from exc
    return xllamacpp


def server_params(gguf: Path, *, context_tokens: int, threads: int, parallel: int = 1,
                  host: str | None = None, port: int | None = None) -> xllamacpp.CommonParams:
    """llama.cpp server parameters for one GGUF file on the CPU."""
    params = import_xllamacpp().CommonParams()
    params.model.path = str(gguf)
    params.n_ctx = context_tokens * parallel  # llama.cpp splits the context between the slots
    params.n_parallel = parallel
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.n_gpu_layers = 0
    params.verbosity = -1  # llama.cpp logs every request otherwise
    if host is not None:
        params.hostnames = [host]
    if port is not None:
        params.port = port
    return params


class LlamaCppGenerator:
    """Chat and plain completions from a GGUF model (a `TextGenerator`).

    `model` is a `.gguf` file, a folder holding one, or a Hub GGUF repo; the
    offline default resolves to the Qwen2.5-Coder GGUF that PyPI packages ship
    (assembled once into the model cache). `warm_up()` loads it.
    """

    def __init__(
        self,
        model: str,
        *,
        gguf_file: str | None = None,
        threads: int | None = None,
        context_tokens: int = 4096,
        setting: str | None = None,
        model_cache: Path | None = None,
    ) -> None:
        self.model_name = model
        self.model_cache = model_cache  # where a GGUF split over packages is assembled; None: the XDG cache
        self.gguf_file = gguf_file
        self.threads = threads
        self.context_tokens = context_tokens
        self.setting = setting
        self.resolved: ResolvedModel | None = None
        self._server: xllamacpp.Server | None = None
        self._lock = threading.Lock()

    @property
    def gguf_path(self) -> Path:
        resolved = self.resolved or resolve_model(self.model_name, role="generator", setting=self.setting,
                                                  gguf_file=self.gguf_file, cache_dir=self.model_cache)
        self.resolved = resolved
        name = resolved.gguf_file or self.gguf_file
        if name is None or not (resolved.path / name).is_file():
            found = sorted(resolved.path.glob("*.gguf"))
            if not found:
                raise GeneratorError(f"No .gguf file in {resolved.path} for the generator {self.model_name!r}",
                                     kind="not_found", model=self.model_name)
            name = found[0].name
        return resolved.path / name

    def warm_up(self) -> LlamaCppGenerator:
        if self._server is None:
            with self._lock:
                if self._server is None:
                    params = server_params(self.gguf_path, context_tokens=self.context_tokens,
                                           threads=self.threads or default_threads())
                    self._server = import_xllamacpp().Server(params)
        return self

    @property
    def server(self) -> xllamacpp.Server:
        self.warm_up()
        assert self._server is not None
        return self._server

    @staticmethod
    def _chat_request(messages: Sequence[Message], max_new_tokens: int, temperature: float,
                      stop: Sequence[str] | None) -> dict[str, Any]:
        request: dict[str, Any] = {
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "max_tokens": max_new_tokens,
            "temperature": temperature,
            "cache_prompt": True,  # reuse the KV cache of the shared prefix (the system prompt)
            # Small models loop on a phrase ("X are not mounted. X are not mounted. ..."); a mild penalty stops it.
            "repeat_penalty": 1.1,
        }
        if stop:
            request["stop"] = list(stop)
        return request

    @staticmethod
    def _completion_request(prompt: str, sampling: Sampling) -> dict[str, Any]:
        request: dict[str, Any] = {"prompt": prompt, "max_tokens": sampling.max_new_tokens,
                                   "temperature": sampling.temperature, "top_p": sampling.top_p,
                                   "cache_prompt": True}
        if sampling.seed is not None:
            request["seed"] = sampling.seed
        if sampling.stop:
            request["stop"] = list(sampling.stop)
        return request

    def _call(self, handler: str, request: dict[str, Any]) -> dict[str, Any]:
        try:
            response = getattr(self.server, handler)(request)
        except ValueError as exc:
            raise GeneratorError(f"llama.cpp rejected the request: {exc}", kind="bad_request",
                                 model=self.model_name) from None
        if isinstance(response, dict) and response.get("error"):
            raise GeneratorError(f"llama.cpp failed: {_error_message(response)}", kind="api", model=self.model_name)
        return response

    def _stream(self, handler: str, request: dict[str, Any], text_of) -> Iterator[str]:  # noqa: ANN001
        """Deltas from llama.cpp's streaming callback, through a queue; closing stops the generation."""
        pieces: queue.Queue = queue.Queue()
        cancelled = threading.Event()

        def on_chunk(chunk: dict[str, Any]) -> bool:
            if isinstance(chunk, dict) and chunk.get("error"):
                pieces.put(GeneratorError(f"llama.cpp failed: {_error_message(chunk)}", kind="api",
                                          model=self.model_name))
                return True
            text = text_of(chunk)
            if text:
                pieces.put(text)
            return cancelled.is_set()  # True stops llama.cpp

        def run() -> None:
            try:
                getattr(self.server, handler)({**request, "stream": True}, on_chunk)
            except ValueError as exc:
                pieces.put(GeneratorError(f"llama.cpp rejected the request: {exc}", kind="bad_request",
                                          model=self.model_name))
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer's thread
                pieces.put(exc)
            finally:
                pieces.put(_END)

        worker = threading.Thread(target=run, name="llama-cpp-stream", daemon=True)
        worker.start()
        try:
            while (item := pieces.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancelled.set()
            worker.join()

    def generate(self, messages: Sequence[Message], *, max_new_tokens: int = 256, temperature: float = 0.0,
                 stop: Sequence[str] | None = None) -> str:
        response = self._call("handle_chat_completions", self._chat_request(messages, max_new_tokens, temperature, stop))
        return (response["choices"][0]["message"].get("content") or "").strip()

    def stream(self, messages: Sequence[Message], *, max_new_tokens: int = 256, temperature: float = 0.0,
               stop: Sequence[str] | None = None) -> Iterator[str]:
        started = False
        for piece in self._stream("handle_chat_completions",
                                  self._chat_request(messages, max_new_tokens, temperature, stop), _chat_delta):
            if not started:
                piece = piece.lstrip()
                started = bool(piece)
            if piece:
                yield piece

    def complete(self, prompt: str, sampling: Sampling) -> str:
        response = self._call("handle_completions", self._completion_request(prompt, sampling))
        return response["choices"][0].get("text") or ""

    def stream_complete(self, prompt: str, sampling: Sampling) -> Iterator[str]:
        yield from self._stream("handle_completions", self._completion_request(prompt, sampling), _completion_delta)


def _chat_delta(chunk: dict[str, Any]) -> str:
    choices = chunk.get("choices") or []
    return (choices[0].get("delta") or {}).get("content") or "" if choices else ""


def _completion_delta(chunk: dict[str, Any]) -> str:
    choices = chunk.get("choices") or []
    return choices[0].get("text") or "" if choices else ""


def _error_message(response: dict[str, Any]) -> str:
    error = response.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error)
