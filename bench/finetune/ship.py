"""Copy a trained model into the package (generators/models/NAME), as the offline stand-in model resolution uses.

Only what loading needs is copied (config, float16 weights, tokenizer) plus the
training record (`training.json`, `evaluations.jsonl`); checkpoints stay behind.
The model card (README.md in the target folder) is written by hand from the
measured scores in bench/RESULTS.md.

    python bench/finetune/ship.py /work/train/reader-minilm-squad reader-minilm-squad
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

KEEP = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
        "vocab.txt", "training.json", "evaluations.jsonl", "config_sentence_transformers.json")
LIMIT_MB = 50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trained", type=Path, help="the --out folder of rag finetune")
    parser.add_argument("name", help="folder name under generators/models")
    args = parser.parse_args()
    target = Path(__file__).resolve().parents[2] / "generators" / "models" / args.name
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in KEEP:
        source = args.trained / name
        if source.is_file():
            shutil.copy2(source, target / name)
            copied.append(name)
    if "model.safetensors" not in copied:
        raise SystemExit(f"{args.trained} has no model.safetensors: has training finished?")
    size = sum((target / name).stat().st_size for name in copied) / 1e6
    if size > LIMIT_MB:
        raise SystemExit(f"{target} is {size:.1f} MB, over the {LIMIT_MB} MB limit for shipped models")
    print(f"shipped {', '.join(copied)} to {target} ({size:.1f} MB)")


if __name__ == "__main__":
    main()
