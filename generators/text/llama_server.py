"""An OpenAI-compatible HTTP server over one GGUF model: llama.cpp's own server, through `xllamacpp`.

    python -m generators.text.llama_server --model Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF --port 8001

serves `/v1/chat/completions` (streaming too), `/v1/completions`, `/v1/models`
and `/health` on loopback until interrupted. `--model` takes what
`RAG_GENERATOR__MODEL` takes (a .gguf file, a folder, a Hub GGUF repo; offline
the packaged Qwen2.5-Coder). Point `RAG_GENERATOR__BACKEND=openai` and
`RAG_OPENAI__BASE_URL=http://127.0.0.1:8001/v1` at it to share one model
between processes.
"""

from __future__ import annotations

import argparse
import signal
import threading

from generators.text.llama_generator import LlamaCppGenerator, default_threads, import_xllamacpp, server_params
from generators.model_names import GENERATOR


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=GENERATOR.name)
    parser.add_argument("--gguf-file", default=None,
                        help=f"the file of a Hub GGUF repo (default for the default model: {GENERATOR.file})")
    parser.add_argument("--alias", default=None, help="the model name /v1/models reports")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--context-tokens", type=int, default=4096)
    parser.add_argument("--parallel", type=int, default=1, help="requests decoded at once (the context is split)")
    args = parser.parse_args(argv)

    gguf_file = args.gguf_file or (GENERATOR.file if args.model == GENERATOR.name else None)
    gguf = LlamaCppGenerator(args.model, gguf_file=gguf_file).gguf_path
    params = server_params(gguf, context_tokens=args.context_tokens, threads=args.threads or default_threads(),
                           parallel=args.parallel, host=args.host, port=args.port)
    if args.alias:
        params.model_alias = {args.alias}
    server = import_xllamacpp().Server(params)
    print(f"serving {gguf.name} on {server.listening_address}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    del server  # stops llama.cpp's HTTP loop


if __name__ == "__main__":
    main()
