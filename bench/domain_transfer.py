"""Domain transfer: the shipped reader on privacy policies, before and after a short fine-tune on other policies.

PolicyQA's 40 policies are split by policy: the first half (in file order)
trains, the second half tests, so no test policy is ever seen in training.
Both halves are written as SQuAD-format files in `--work`; then, with the
project's own commands:

1. `rag eval qa --setting gold` of the shipped reader on the test policies;
2. `rag finetune reader --base <shipped reader> --squad <train policies>` for
   `--max-examples` questions (held out: the test half's first `--eval-limit`);
3. `rag eval qa --setting gold` of the fine-tuned reader on the test policies.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/domain_transfer.py --max-examples 2000 --out bench/out/domain_transfer.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POLICYQA = ROOT.parent / "shared" / "data" / "qa" / "domain" / "policyqa.json"
SHIPPED = ROOT / "generators" / "models" / "reader-minilm-squad"


def split_by_policy(source: Path, work: Path) -> tuple[Path, Path, dict]:
    data = json.loads(source.read_text(encoding="utf-8"))
    policies = data["data"]
    half = len(policies) // 2
    train, test = work / "policyqa-train.json", work / "policyqa-test.json"
    train.write_text(json.dumps({"version": "split", "data": policies[:half]}), encoding="utf-8")
    test.write_text(json.dumps({"version": "split", "data": policies[half:]}), encoding="utf-8")

    def questions(articles: list[dict]) -> int:
        return sum(len(p["qas"]) for a in articles for p in a["paragraphs"])

    info = {"train_policies": [a.get("title") for a in policies[:half]],
            "test_policies": [a.get("title") for a in policies[half:]],
            "train_questions": questions(policies[:half]), "test_questions": questions(policies[half:])}
    return train, test, info


def rag(*args: str, env: dict[str, str]) -> dict:
    executable = shutil.which("rag", path=os.path.dirname(sys.executable)) or "rag"
    result = subprocess.run([executable, *args, "--json"], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"rag {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout)


def gold_eval(test: Path, reader: Path, work: Path, limit: int) -> dict:
    # Spans only (no widening to sentences): F1 of the reader itself, as the XQuAD gold figure is measured.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_READER__MODEL": str(reader), "RAG_READER__WIDEN_BELOW": "0"}
    report = rag("eval", "qa", "--squad", str(test), "--setting", "gold", "--limit", str(limit),
                 "--work", str(work / "eval"), env=env)
    return {k: report[k] for k in ("questions", "em", "f1", "contains")} | {"notes": report.get("notes", [])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reader", type=Path, default=SHIPPED, help="the reader to start from")
    parser.add_argument("--max-examples", type=int, default=2000, help="training questions from the train half")
    parser.add_argument("--limit", type=int, default=0, help="test questions evaluated (0 = all)")
    parser.add_argument("--lr", default="5e-5")
    parser.add_argument("--threads", default="2")
    parser.add_argument("--work", type=Path, default=ROOT / ".rag-eval" / "domain-transfer")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "domain_transfer.json")
    args = parser.parse_args()
    if not (args.reader / "config.json").is_file():
        raise SystemExit(f"no reader at {args.reader}")
    args.work.mkdir(parents=True, exist_ok=True)
    train, test, info = split_by_policy(POLICYQA, args.work)

    before = gold_eval(test, args.reader, args.work, args.limit)
    tuned = args.work / "reader-policyqa"
    shutil.rmtree(tuned, ignore_errors=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    training = rag("finetune", "reader", "--squad", str(train), "--base", str(args.reader), "--out", str(tuned),
                   "--eval-squad", str(test), "--eval-limit", "200", "--max-examples", str(args.max_examples),
                   "--lr", args.lr, "--eval-steps", "100000", "--save-steps", "100", "--threads", args.threads,
                   "--save-dtype", "float32", env=env)
    seconds = time.perf_counter() - started
    after = gold_eval(test, tuned, args.work, args.limit)
    result = {**info, "reader": str(args.reader), "before": before, "after": after,
              "finetune": {"examples": training["examples"], "steps": training["steps"], "seconds": round(seconds, 1),
                           "lr": args.lr}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if not k.endswith("_policies")}, indent=1))


if __name__ == "__main__":
    main()
