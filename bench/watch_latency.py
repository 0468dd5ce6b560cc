"""A watched folder: seconds from saving a one-page edit to `/ask` answering from it.

`rag serve --watch FOLDER` runs on loopback over a copy of a documentation folder (default: the
FastAPI English docs, 155 pages). Once the first sync has committed, each trial appends a paragraph with
a new fact to one page (a different page each time, written in place as an editor saves), then asks
`/ask` (extractive) about that fact every 100 ms until an answer cites the edited page with the fact
in it. The time includes the file-system event, the debounce, the incremental ingest of the folder
(unchanged files skipped by hash), the commit and the server picking up the new generation.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/watch_latency.py --trials 10
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT.parent / "shared" / "data" / "corpus" / "fastapi-docs" / "docs" / "en" / "docs"
CODES = ["KESTREL", "MARLIN", "OSPREY", "PLOVER", "QUETZAL", "RAVEN", "SISKIN", "TANAGER", "VIREO", "WAXWING",
         "AVOCET", "BITTERN", "CURLEW", "DUNLIN", "EGRET", "FULMAR", "GANNET", "HOOPOE", "IBIS", "JACANA"]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, timeout: float, what: str) -> None:  # noqa: ANN001 - a callable returning bool
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=Path, default=DOCS)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for one edit")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="rag-watch-"))
    folder = work / "docs"
    shutil.copytree(args.docs, folder)
    pages = sorted(p for p in folder.rglob("*.md") if p.stat().st_size > 2000)
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_INDEX__DIR": str(work / "index"),
           "RAG_INDEX__COLLECTIONS_DIR": str(work / "collections")}
    rag = Path(sys.executable).with_name("rag")
    server = subprocess.Popen([str(rag), "serve", "--port", str(port), "--watch", str(folder)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    files = sum(1 for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    rows = []
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            started = time.perf_counter()
            wait_until(lambda: client.get("/documents", params={"limit": 1}).json().get("total", 0) >= files,
                       900, "the first sync")
            first_sync = time.perf_counter() - started
            time.sleep(2)  # let the first sync's last commit settle before timing edits
            for trial in range(args.trials):
                page = pages[(trial * 7) % len(pages)]
                code = f"{CODES[trial % len(CODES)]}-{4000 + trial * 37}"
                question = f"What is the release codename of build {trial + 9000}?"
                edit = (f"\n\n## Release build {trial + 9000}\n\nThe release codename of build {trial + 9000} is "
                        f"{code}.\n")
                saved = time.perf_counter()
                with open(page, "a", encoding="utf-8") as handle:
                    handle.write(edit)

                def answered(page=page, code=code, question=question) -> bool:
                    body = client.post("/ask", json={"question": question, "mode": "extractive"}).json()
                    cited = {Path(c.get("source", "")).name for c in body.get("citations", [])}
                    return code in body.get("answer", "") and page.name in cited

                wait_until(answered, args.timeout, f"trial {trial}")
                rows.append(time.perf_counter() - saved)
                print(json.dumps({"trial": trial, "page": page.name, "seconds": round(rows[-1], 2)}), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    ordered = sorted(rows)
    print(json.dumps({"files": files, "first_sync_seconds": round(first_sync, 1), "trials": len(rows),
                      "p50_seconds": round(statistics.median(rows), 2),
                      "p90_seconds": round(ordered[int(0.9 * (len(ordered) - 1))], 2),
                      "max_seconds": round(ordered[-1], 2), "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
