"""Quality signals validated on SciFact **test** (the model was fitted on train by ``benchmarks.fit_hallucination``).

- hallucination_risk: AUROC for "no relevant document in the top 5" over the 300 test queries, run as
  ``rag eval`` runs them (``evaluate`` through ``RetrievalEngine``, the cache off), with its stratified bootstrap
  95 % interval; each feature's own AUROC beside it (sign-free: max(a, 1 - a)).
- faithfulness: for each test query, an answer of two sentences drawn from its top 3 contexts (supported) against
  the same answer with one number changed, with its rarest content term swapped for a rare term of an unrelated
  document, with a common term swapped in instead (no goal: the lexical veto does not fire there, so this shows
  what the embedding and coverage parts do alone), and against two sentences of an unrelated document.
  AUROC of ``faithfulness_score`` for supported vs each kind.
- cost: the ``signals`` stage per query (what ``retrieve`` adds) at the eval settings and at the defaults a user
  gets, and ``score_answer`` per answer.

Usage: python -m benchmarks.quality_signals [--dataset ../shared/data/scifact]
"""

import argparse
import gzip
import json
import re
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import numpy as np

from benchmarks.offline import SCIFACT, OfflineSciFact
from benchmarks.report import OUT, write_report
from rag_core.config import load_config
from rag_core.quality.answers import answer_scorer
from rag_core.quality.auroc import auroc, auroc_interval
from rag_core.quality.evaluation import evaluate
from rag_core.quality.signal_evaluation import FAILURE_DEPTH, failed_queries
from rag_core.retrieval.faithfulness import RARE_DOCUMENT_SHARE, AnswerScorer, content_terms, numbers, split_sentences
from rag_core.retrieval.signals import TOP_CONTEXTS, QueryFeatures

SEED = 20261126
GOALS = {"hallucination_risk": 0.75, "faithfulness": 0.9}
COMMON_SHARE = 0.05  # a swapped-in "common" term is in at least 5 % of the documents
_WORD = re.compile(r"[A-Za-z][A-Za-z-]{2,}")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def percentiles(values: list[float]) -> dict[str, float]:
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        "p50": round(float(p50), 3),
        "p95": round(float(p95), 3),
        "p99": round(float(p99), 3),
        "queries": len(values),
    }


def read_corpus(path: Path) -> dict[str, str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as lines:
        return {str(d["_id"]): d["text"] for d in map(json.loads, lines)}


def changed_number(sentence: str) -> str | None:
    found = _NUMBER.search(sentence)
    if not found:
        return None
    text = found.group()
    new = str(int(text) + 1) if "." not in text else f"{float(text) * 1.1:.{len(text.split('.')[1])}f}"
    return sentence[: found.start()] + new + sentence[found.end() :]


def swapped_term(
    answer: str, donor: str, context_terms: set[str], share: Callable[[str], float], rare: bool
) -> str | None:
    """The answer with its rarest content word replaced by a donor word whose stem no context holds, rare
    (under RARE_DOCUMENT_SHARE of the documents) or common (at least COMMON_SHARE)."""
    words = [(w, t) for w in dict.fromkeys(_WORD.findall(answer)) for t in content_terms([w])[0]]
    if not words:
        return None
    key = min(words, key=lambda wt: share(wt[1]))[0]
    for word in dict.fromkeys(_WORD.findall(donor)):
        terms = content_terms([word])[0]
        if len(terms) != 1 or terms & context_terms:
            continue
        value = share(next(iter(terms)))
        if (rare and 0 < value < RARE_DOCUMENT_SHARE) or (not rare and value >= COMMON_SHARE):
            return re.sub(rf"\b{re.escape(key)}\b", word, answer, count=1)
    return None


def faithfulness(
    scorer: AnswerScorer,
    contexts_of: dict[str, list[str]],
    corpus: dict[str, str],
    avoid: dict[str, set[str]],
    share: Callable[[str], float],
) -> dict:
    rng = np.random.default_rng(SEED)
    doc_ids = sorted(corpus)
    scores: dict[str, list[tuple[float, float]]] = {
        k: [] for k in ("number_changed", "key_term_changed_rare", "unrelated", "key_term_changed_common")
    }
    timings: list[float] = []

    def score(answer: str, contexts: list[str]) -> float:
        tick = time.perf_counter()
        value = scorer.score(answer, contexts).score
        timings.append((time.perf_counter() - tick) * 1000)
        return value

    for qid, contexts in contexts_of.items():
        sentences = [s for c in contexts for s in split_sentences(c) if len(s.split()) >= 6]
        if len(sentences) < 2:
            continue
        picked = [sentences[i] for i in sorted(rng.choice(len(sentences), 2, replace=False))]
        answer = " ".join(picked)
        supported = score(answer, contexts)
        donor_id = next(d for d in rng.permutation(doc_ids) if d not in avoid[qid])
        donor = corpus[donor_id]
        unrelated = [s for s in split_sentences(donor) if len(s.split()) >= 6][:2]
        if unrelated:
            scores["unrelated"].append((supported, score(" ".join(unrelated), contexts)))
        context_terms = set().union(*content_terms(contexts))
        for kind, rare in (("key_term_changed_rare", True), ("key_term_changed_common", False)):
            swapped = swapped_term(answer, donor, context_terms, share, rare)
            if swapped and swapped != answer:
                scores[kind].append((supported, score(swapped, contexts)))
        with_number = [s for s in sentences if numbers(s)]
        if with_number:
            first = with_number[int(rng.integers(len(with_number)))]
            base = f"{first} {next(s for s in sentences if s != first)}"
            changed = changed_number(base)  # its first number, which is in ``first``
            if changed and changed != base:
                scores["number_changed"].append((score(base, contexts), score(changed, contexts)))
    kinds = {}
    for kind, pairs in scores.items():
        good, bad = [p[0] for p in pairs], [p[1] for p in pairs]
        interval = auroc_interval([True] * len(good) + [False] * len(bad), good + bad)
        kinds[kind] = {
            "pairs": len(pairs),
            "auroc": interval.as_json(4),
            "mean_score": {"supported": round(float(np.mean(good)), 4), "altered": round(float(np.mean(bad)), 4)},
        }
        if kind != "key_term_changed_common":
            kinds[kind] |= {"goal": GOALS["faithfulness"], "met": interval.mean >= GOALS["faithfulness"]}
    return {"kinds": kinds, "score_answer_ms": percentiles(timings)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, default=SCIFACT)
    parser.add_argument("--out", default=str(OUT / "quality_signals.json"))
    args = parser.parse_args()
    data = OfflineSciFact(load_config(), args.dataset)
    test = data.splits["test"]
    signals: dict[str, dict[str, float]] = {}
    contexts_of: dict[str, list[str]] = {}
    stage_ms: list[float] = []
    retrieval_ms: list[float] = []

    def keep(qid, result) -> None:  # noqa: ANN001 - evaluate's hook
        signals[qid] = result.signals
        contexts_of[qid] = [c.text for c in result.results[:TOP_CONTEXTS]]
        stage_ms.append(result.timings_ms["signals"])
        retrieval_ms.append(result.timings_ms["retrieval"])

    _, run = evaluate(data.engine, test, data.options(), on_result=keep)
    failed = failed_queries(run, test.qrels)
    ids = sorted(failed)
    labels = [failed[q] for q in ids]
    risk = auroc_interval(labels, [signals[q]["hallucination_risk"] for q in ids])
    features = {}
    for name in (f.name for f in fields(QueryFeatures)):
        present = [q for q in ids if name in signals[q]]
        value = auroc([failed[q] for q in present], [signals[q][name] for q in present])
        features[name] = round(max(value, 1 - value), 4)
    hallucination = {
        "split": "test",
        "queries": len(ids),
        "failed": sum(labels),
        "failure": f"no relevant document in the top {FAILURE_DEPTH}",
        "auroc": risk.as_json(4),
        "goal": GOALS["hallucination_risk"],
        "met": risk.mean >= GOALS["hallucination_risk"],
        "feature_auroc_sign_free": features,
        "faithfulness_score_auroc_for_success": round(
            auroc([not failed[q] for q in ids], [signals[q]["faithfulness_score"] for q in ids]), 4
        ),
    }

    defaults = data.engine.options()
    default_timings = [data.engine.search_many([text], defaults)[0].timings_ms for text in test.queries.values()]
    cost = {
        "eval_settings": {"signals_ms": percentiles(stage_ms), "retrieval_ms": percentiles(retrieval_ms)},
        "default_settings": {
            "signals_ms": percentiles([t["signals"] for t in default_timings]),
            "retrieval_ms": percentiles([t["retrieval"] for t in default_timings]),
        },
    }

    corpus = read_corpus(test.corpus)
    avoid = {q: {d for d, _ in run[q][:50]} | set(test.qrels[q]) for q in contexts_of}
    scorer = answer_scorer(data.engine)
    faithful = faithfulness(scorer, contexts_of, corpus, avoid, scorer.document_share)
    write_report(args.out, {"hallucination_risk": hallucination, "faithfulness": faithful, "cost": cost})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
