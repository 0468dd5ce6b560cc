"""Prompt evaluation and decoding speed of the local GGUF generator under llama.cpp settings.

Each configuration loads the model once, then answers the same chat prompt (a system prompt, then a
user message of ~`--prompt-chars` characters of documentation text that changes every request so
nothing but the system prompt comes from the KV cache) `--repeats` times; llama.cpp's own timings give
prompt tokens/s and decoded tokens/s, and the wall clock gives the time to the first streamed token.

    .venv/bin/python bench/llama_speed.py --threads 1 2 --flash-attn off on --prompt-chars 1500
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DOCS = ROOT / "docs"


def passages(chars: int, count: int) -> list[str]:
    """`count` different slices of the project's own docs, `chars` long each."""
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted(DOCS.glob("*.md")))
    step = max((len(text) - chars) // max(count, 1), 1)
    return [text[i * step : i * step + chars] for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="a .gguf file (default: the offline default generator)")
    parser.add_argument("--threads", type=int, nargs="+", default=[2])
    parser.add_argument("--flash-attn", nargs="+", default=["auto"], choices=["auto", "on", "off"])
    parser.add_argument("--ubatch", type=int, nargs="+", default=[512])
    parser.add_argument("--prompt-chars", type=int, default=1500)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()

    from generators.text.generative_reader import SYSTEM_PROMPT
    from generators.text.llama_generator import LlamaCppGenerator, import_xllamacpp, server_params
    from generators.model_names import GENERATOR

    gguf = Path(args.model) if args.model else LlamaCppGenerator(
        GENERATOR.name, gguf_file=GENERATOR.file).gguf_path
    xllamacpp = import_xllamacpp()
    flash = {"auto": -1, "off": 0, "on": 1}
    print(f"model {gguf.name}; prompt ~{args.prompt_chars} chars; {args.repeats} requests per configuration")
    print("threads  flash  ubatch  prompt tok  prompt tok/s  decode tok/s  first token s")
    for threads, flash_attn, ubatch in itertools.product(args.threads, args.flash_attn, args.ubatch):
        params = server_params(gguf, context_tokens=4096, threads=threads)
        params.flash_attn_type = flash[flash_attn]
        params.n_ubatch = ubatch
        server = xllamacpp.Server(params)
        rows = []
        for text in passages(args.prompt_chars, args.repeats + 1):
            request = {"messages": [{"role": "system", "content": SYSTEM_PROMPT},
                                    {"role": "user", "content": f"Passages:\n\n[1] {text}\n\nQuestion: What is this about?"}],
                       "max_tokens": args.max_tokens, "temperature": 0.0, "cache_prompt": True, "stream": True}
            started, first, last = time.perf_counter(), None, {}

            def on_chunk(chunk: dict) -> bool:
                nonlocal first, last
                if first is None and chunk.get("choices") and (chunk["choices"][0].get("delta") or {}).get("content"):
                    first = time.perf_counter()
                if chunk.get("timings"):
                    last = chunk["timings"]
                return False

            server.handle_chat_completions(request, on_chunk)
            rows.append((last.get("prompt_n", 0), last.get("prompt_per_second", 0.0),
                         last.get("predicted_per_second", 0.0), (first or time.perf_counter()) - started))
        rows = rows[1:]  # the first request also evaluates the system prompt
        med = [statistics.median(column) for column in zip(*rows)]
        print(f"{threads:>7}  {flash_attn:>5}  {ubatch:>6}  {med[0]:>10.0f}  {med[1]:>12.1f}  {med[2]:>12.1f}  {med[3]:>13.2f}")
        del server


if __name__ == "__main__":
    main()
