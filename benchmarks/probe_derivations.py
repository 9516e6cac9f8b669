"""Which way of deriving a probe query from a chunk tracks real quality best? Each derivation's probe set is
answered by every configuration of ``benchmarks.probe_correlation`` (same corpus, same indexes), and its Spearman
correlation with SciFact test nDCG@10 is reported (issue 19, item 1: the derivation "argued with measurements").

Derivations, all without a model download: the shipped one (the salient sentence without its 2 rarest content
words); the same sentence without its rarest quarter or half of the content words; only its 6 commonest content
words; its content words without the rarest 30 %; and the shipped query with half of its content words replaced by
their nearest neighbour in a word space learnt from the corpus itself (LSA: a truncated SVD of the TF-IDF
term-chunk matrix), the nearest thing to a paraphrase that needs no model.

Usage: python -m benchmarks.probe_derivations [--work DIR]   (DIR: probe_correlation's, to reuse its indexes)
"""

import argparse
import random
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from benchmarks.offline import SCIFACT
from benchmarks.probe_correlation import (
    PROBE_FIELDS,
    SHIPPED,
    configuration_searches,
    indexed_configurations,
    spearman,
    subcorpus,
)
from benchmarks.report import OUT, write_report
from rag_core.config import load_config
from rag_core.quality.evaluation import BeirDataset, evaluate
from rag_core.quality.probes import WORD, build_probe_set, content_words, derive_query, sentences
from rag_core.retrieval.lexical import tokenize

Derive = Callable[[str, Mapping[str, float]], str | None]


def salient(text: str, idf: Mapping[str, float]) -> tuple[str, list[str]] | None:
    """The sentence the shipped derivation picks, and its content words."""
    best = None
    for sentence in sentences(text):
        words = content_words(sentence)
        if len(words) >= 6:
            score = sum(idf.get(w.lower(), 0.0) for w in words) / len(words)
            if best is None or score > best[0]:
                best = (score, sentence, words)
    return None if best is None else (best[1], best[2])


def without_rarest(share: float, content_only: bool = False) -> Derive:
    def derive(text: str, idf: Mapping[str, float]) -> str | None:
        found = salient(text, idf)
        if found is None:
            return None
        sentence, words = found
        rarest = sorted(words, key=lambda w: -idf.get(w.lower(), 0.0))
        dropped = {w.lower() for w in rarest[: round(len(words) * share)]}
        keep = {w.lower() for w in words} - dropped
        kept = [
            w for w in WORD.findall(sentence) if w.lower() not in dropped and (not content_only or w.lower() in keep)
        ]
        return " ".join(kept[:32])

    return derive


def commonest(count: int) -> Derive:
    def derive(text: str, idf: Mapping[str, float]) -> str | None:
        found = salient(text, idf)
        if found is None:
            return None
        sentence, words = found
        keep = {w.lower() for w in sorted(words, key=lambda w: idf.get(w.lower(), 0.0))[:count]}
        return " ".join(w for w in WORD.findall(sentence) if w.lower() in keep)

    return derive


def corpus_neighbours(texts: list[str], share: float) -> Derive:
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(token_pattern=WORD.pattern, lowercase=True, min_df=3, sublinear_tf=True)
    matrix = vectorizer.fit_transform(texts)
    vocabulary = vectorizer.get_feature_names_out()
    svd = TruncatedSVD(128, random_state=0).fit(matrix)
    space = svd.components_.T * svd.singular_values_
    space /= np.maximum(np.linalg.norm(space, axis=1, keepdims=True), 1e-9)
    index = {w: i for i, w in enumerate(vocabulary)}
    stems = [tuple(s) for s in tokenize(list(vocabulary), as_words=True)]
    usable = np.array([bool(s) for s in stems])

    def neighbour(word: str) -> str:
        i = index.get(word.lower())
        if i is None:
            return word
        similarity = np.where(usable, space @ space[i], -1.0)
        for j in np.argsort(-similarity)[:10]:
            if stems[j] != stems[i] and similarity[j] > 0.5:
                return str(vocabulary[j])
        return word

    def derive(text: str, idf: Mapping[str, float]) -> str | None:
        query = derive_query(text, idf)
        if query is None:
            return None
        rng = random.Random(query)
        content = set(content_words(query))
        return " ".join(neighbour(w) if w in content and rng.random() < share else w for w in query.split())

    return derive


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, default=SCIFACT)
    parser.add_argument("--distractors", type=int, default=1500)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--work", type=Path, help="probe_correlation's --work folder, to reuse its indexes")
    parser.add_argument("--out", default=str(OUT / "probe_derivations.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="probe-derivations-") as scratch:
        root = args.work or Path(scratch)
        real = subcorpus(args.dataset, root / "corpus", args.distractors)
        contexts = indexed_configurations(load_config(), root, real, started)
        shipped = contexts[SHIPPED]
        collection = shipped.manager.resolve(shipped.alias())
        rows = [r for batch in shipped.manager.iter_rows(collection, PROBE_FIELDS) for r in batch]
        derivations: dict[str, Derive] = {
            "salient sentence without its 2 rarest content words (shipped)": derive_query,
            "salient sentence without its rarest quarter of content words": without_rarest(0.25),
            "salient sentence without its rarest half of content words": without_rarest(0.5),
            "content words of the salient sentence without the rarest 30 %": without_rarest(0.3, content_only=True),
            "the 6 commonest content words of the salient sentence": commonest(6),
            "shipped query, half its content words swapped for corpus-LSA neighbours": corpus_neighbours(
                [r["text"] for r in rows], 0.5
            ),
        }
        searches = {
            (name, label): (context.engine(), options)
            for name, context in contexts.items()
            for label, options in configuration_searches(name, context.engine()).items()
        }
        test = {
            label: evaluate(engine, real, options, latency_sample=None)[0].ndcg_at_10
            for (_, label), (engine, options) in searches.items()
        }
        results = []
        for derivation, derive in derivations.items():
            probe_set = build_probe_set(rows, collection=collection, data_version=0, n=args.probes, derive=derive)
            probes = BeirDataset(root=root, corpus=real.corpus, queries=probe_set.queries, qrels=probe_set.qrels)
            on_probes = {
                label: evaluate(engine, probes, options, latency_sample=None)[0].ndcg_at_10
                for (_, label), (engine, options) in searches.items()
            }
            results.append(
                {
                    "derivation": derivation,
                    "example": probe_set.probes[0].query,
                    "probes": len(probe_set.probes),
                    "dropped": probe_set.dropped,
                    "spearman": round(spearman(list(on_probes.values()), [test[k] for k in on_probes]), 4),
                    "probe_ndcg_at_10": {k: round(v, 4) for k, v in on_probes.items()},
                }
            )
            print(results[-1]["derivation"], results[-1]["spearman"], flush=True)
    write_report(
        args.out,
        {
            "scifact_test_ndcg_at_10": {k: round(v, 4) for k, v in test.items()},
            "derivations": results,
            "seconds": round(time.perf_counter() - started, 1),
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
