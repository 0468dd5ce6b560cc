"""Load on the HTTP API: concurrent clients on `POST /ask` while a document is being ingested.

Starts `rag serve` (uvicorn, one process) on a free loopback port over a fresh
index of the project's own `docs/`, then runs `--clients` concurrent clients
(httpx, async) for `--seconds`, each asking questions from a fixed list in a
loop, while a large Markdown upload is ingested through `POST /documents` part
way through. Reports requests per second, p50 / p95 / p99 latency, errors (any
non-200 but 429), requests turned away with 429 (the client then waits the
`Retry-After` it was given, as a well-behaved client does), and the API's own
overhead: the same questions answered by the chain in process (no HTTP) one at a
time, against one client over HTTP, one at a time (extractive mode).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/load.py --clients 32 --seconds 60 --out bench/out/load.json
    HF_HUB_OFFLINE=1 .venv/bin/python bench/load.py --mode generative --clients 8 --seconds 60 --no-overhead
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the project's packages, not bench/ingest.py, for `import ingest`
QUESTIONS = [
    "How do I make re-ingesting a folder fast?",
    "What does --prune do?",
    "Can two ingests run at once?",
    "What happens when a PDF cannot be read?",
    "How are chunks sized?",
    "Where does the index live?",
    "What is the pipeline fingerprint?",
    "How does the service decide that an answer is not in the documents?",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = (len(ordered) - 1) * q / 100
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def big_upload(paragraphs: int) -> bytes:
    parts = ["# Load test notes\n"]
    for i in range(paragraphs):
        parts.append(f"## Item {i}\n\nItem {i} is stored in bay {i % 17} and weighs {i * 3 % 101} kilograms; "
                     f"it was counted on day {i % 28 + 1} by team {i % 5}.\n")
    return "\n".join(parts).encode()


def start_server(folder: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_INDEX__DIR": str(folder / "index"),
           "RAG_INDEX__COLLECTIONS_DIR": str(folder / "collections")}
    rag = shutil.which("rag", path=os.path.dirname(sys.executable)) or "rag"
    log = open(folder / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen([rag, "serve", "--host", "127.0.0.1", "--port", str(port)], stdout=log,
                               stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                if response.status == 200:
                    return process
        except OSError:
            pass
        if process.poll() is not None:
            raise SystemExit(f"server exited:\n{(folder / 'server.log').read_text()[-3000:]}")
        time.sleep(0.5)
    process.terminate()
    raise SystemExit("server not ready after 300 s")


async def client_loop(client: httpx.AsyncClient, url: str, mode: str, stop_at: float, offset: int,
                      latencies: list[float], errors: list[str], turned_away: list[float]) -> None:
    i = offset
    while time.monotonic() < stop_at:
        question = QUESTIONS[i % len(QUESTIONS)]
        i += 1
        started = time.perf_counter()
        try:
            response = await client.post(f"{url}/ask", json={"question": question, "mode": mode}, timeout=120)
            if response.status_code == 429:  # the queue is full: come back when the server says
                retry_after = float(response.headers["retry-after"])
                turned_away.append(retry_after)
                await asyncio.sleep(min(retry_after, max(stop_at - time.monotonic(), 0)))
                continue
            if response.status_code != 200:
                errors.append(f"{response.status_code}: {response.text[:200]}")
                continue
        except httpx.HTTPError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        latencies.append((time.perf_counter() - started) * 1000)


async def load(url: str, mode: str, clients: int, seconds: float, upload_after: float, upload: bytes) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    turned_away: list[float] = []  # the Retry-After of each 429
    limits = httpx.Limits(max_connections=clients + 2, max_keepalive_connections=clients + 2)
    async with httpx.AsyncClient(limits=limits) as client:
        started = time.monotonic()
        stop_at = started + seconds
        tasks = [asyncio.create_task(client_loop(client, url, mode, stop_at, i, latencies, errors, turned_away))
                 for i in range(clients)]
        await asyncio.sleep(upload_after)
        upload_started = time.monotonic()
        response = await client.post(f"{url}/documents", files={"file": ("load-notes.md", upload, "text/markdown")},
                                     timeout=600)
        upload_seconds = time.monotonic() - upload_started
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
    return {
        "mode": mode, "clients": clients, "seconds": round(elapsed, 1), "requests": len(latencies),
        "errors": len(errors), "error_samples": errors[:5], "requests_per_second": round(len(latencies) / elapsed, 2),
        "turned_away": len(turned_away),
        "retry_after_s": {"min": min(turned_away), "max": max(turned_away)} if turned_away else None,
        "latency_ms": {"p50": round(percentile(latencies, 50), 1), "p95": round(percentile(latencies, 95), 1),
                       "p99": round(percentile(latencies, 99), 1)},
        "upload": {"status": response.status_code, "bytes": len(upload), "seconds": round(upload_seconds, 1),
                   "chunks_added": response.json().get("chunks_added") if response.status_code == 201 else None},
    }


def overhead(url: str, index_dir: Path, rounds: int) -> dict:
    """One question at a time: the chain in this process vs the same question over HTTP."""
    from rag.components import build_chain, build_embedder
    from rag.settings import Settings
    from index.store import IndexStore

    settings = Settings(index={"dir": index_dir})
    embedder = build_embedder(settings)
    direct, http = [], []
    with IndexStore(index_dir).reader() as reader, httpx.Client(timeout=120) as client:
        chain = build_chain(settings, reader, embedder)
        for question in QUESTIONS:  # warm both paths
            chain.run(question, mode="extractive")
            client.post(f"{url}/ask", json={"question": question, "mode": "extractive"})
        for _ in range(rounds):
            for question in QUESTIONS:  # interleaved, so load from elsewhere hits both alike
                started = time.perf_counter()
                chain.run(question, mode="extractive")
                direct.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                response = client.post(f"{url}/ask", json={"question": question, "mode": "extractive"})
                http.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.text
    p50_direct, p50_http = statistics.median(direct), statistics.median(http)
    return {"questions": len(direct), "direct_p50_ms": round(p50_direct, 1), "http_p50_ms": round(p50_http, 1),
            "overhead_p50_ms": round(p50_http - p50_direct, 1), "http_over_direct": round(p50_http / p50_direct, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["extractive", "generative"], default="extractive")
    parser.add_argument("--no-overhead", action="store_true", help="skip the in-process vs HTTP comparison")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--upload-after", type=float, default=10, help="seconds into the run the upload starts")
    parser.add_argument("--upload-paragraphs", type=int, default=1500)
    parser.add_argument("--overhead-rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "load.json")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="rag-load-"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_INDEX__DIR": str(folder / "index")}
    rag = shutil.which("rag", path=os.path.dirname(sys.executable)) or "rag"
    subprocess.run([rag, "ingest", str(ROOT / "docs")], check=True, env=env, stdout=subprocess.DEVNULL)
    port = free_port()
    server = start_server(folder, port)
    url = f"http://127.0.0.1:{port}"
    try:
        result = asyncio.run(load(url, args.mode, args.clients, args.seconds, args.upload_after,
                                  big_upload(args.upload_paragraphs)))
        if not args.no_overhead:
            result["overhead"] = overhead(url, folder / "index", args.overhead_rounds)
    finally:
        server.terminate()
        server.wait(timeout=30)
    result["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(),
                         "load_average": os.getloadavg()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    if result["errors"]:
        raise SystemExit(f"{result['errors']} requests failed")


if __name__ == "__main__":
    main()
