"""Answer metrics: SQuAD v1.1 normalisation for English, CMRC 2018-style mixed segmentation for Chinese;
ranking metrics (nDCG, recall, MRR at a cut-off) for retrieval.

English follows the official SQuAD script's rules (lower case, drop
punctuation and the articles a/an/the, collapse whitespace; F1 over the bag of
tokens). Chinese follows the CMRC 2018 scorer's rules (each CJK character is a
token, runs of other characters are split into words; punctuation dropped;
F1 from the longest common contiguous run of tokens). Written here from those
descriptions.
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable

from common.language import CJK_CHAR, has_cjk

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def _is_punctuation(char: str) -> bool:
    return char in string.punctuation or unicodedata.category(char).startswith("P") or char in "^`~+=|<>$"


def normalize_en(text: str) -> str:
    text = "".join(c for c in text.lower() if not _is_punctuation(c))
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def segment_zh(text: str) -> list[str]:
    """CJK characters one by one, other runs as words; lower case, punctuation dropped."""
    tokens: list[str] = []
    run: list[str] = []
    for char in text.lower().strip():
        if _is_punctuation(char):
            char = " "
        if CJK_CHAR.match(char):
            if run:
                tokens.extend("".join(run).split())
                run = []
            tokens.append(char)
        else:
            run.append(char)
    if run:
        tokens.extend("".join(run).split())
    return tokens


def _longest_common_run(a: list[str], b: list[str]) -> int:
    best = 0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0] * (len(b) + 1)
        for j, y in enumerate(b, start=1):
            if x == y:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def exact_match(prediction: str, answers: Iterable[str]) -> float:
    answers = list(answers)
    if any(has_cjk(a) for a in answers):
        pred = "".join(segment_zh(prediction))
        return float(any(pred == "".join(segment_zh(a)) for a in answers))
    return float(any(normalize_en(prediction) == normalize_en(a) for a in answers))


def f1_score(prediction: str, answers: Iterable[str]) -> float:
    answers = list(answers)
    best = 0.0
    for answer in answers:
        if has_cjk(answer):
            pred, gold = segment_zh(prediction), segment_zh(answer)
            common = _longest_common_run(pred, gold)
        else:
            pred, gold = normalize_en(prediction).split(), normalize_en(answer).split()
            common = sum((Counter(pred) & Counter(gold)).values())
        if common == 0:
            continue
        precision, recall = common / len(pred), common / len(gold)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


def contains_answer(prediction: str, answers: Iterable[str]) -> float:
    """Does the prediction hold a gold answer (after normalisation)? The fair measure for sentence answers."""
    answers = list(answers)
    if any(has_cjk(a) for a in answers):
        pred = "".join(segment_zh(prediction))
        return float(any("".join(segment_zh(a)) in pred for a in answers))
    pred = f" {normalize_en(prediction)} "
    return float(any(f" {normalize_en(a)} " in pred for a in answers))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# -- ranking metrics (BEIR / trec_eval conventions) -----------------------------------------
# `ranked` is a list of document ids, best first (no duplicates); `qrels` maps a document id to
# its graded relevance. A document is relevant when its grade is > 0. nDCG uses trec_eval's
# linear gain (grade / log2(rank + 1)), as BEIR's pytrec_eval scoring does, and the ideal DCG is
# computed from the qrels, not from what was retrieved.


def dcg(gains: Iterable[float]) -> float:
    return sum(gain / math.log2(rank + 1) for rank, gain in enumerate(gains, start=1))


def ndcg_at_k(ranked: list[str], qrels: dict[str, int], k: int) -> float:
    ideal = dcg(sorted((g for g in qrels.values() if g > 0), reverse=True)[:k])
    if ideal == 0:
        return 0.0
    return dcg(max(qrels.get(doc, 0), 0) for doc in ranked[:k]) / ideal


def recall_at_k(ranked: list[str], qrels: dict[str, int], k: int) -> float:
    relevant = {doc for doc, grade in qrels.items() if grade > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def mrr_at_k(ranked: list[str], qrels: dict[str, int], k: int) -> float:
    """1 / rank of the first relevant document within the top k, else 0."""
    for rank, doc in enumerate(ranked[:k], start=1):
        if qrels.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0
