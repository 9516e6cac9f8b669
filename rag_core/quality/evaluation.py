"""Retrieval quality on BEIR-format datasets: nDCG@10, Recall@100 and MRR@10, computed as BEIR does.

A dataset folder holds ``corpus.jsonl(.gz)``, ``queries.jsonl`` and ``qrels/{split}.tsv``. Hits whose document id
equals the query id are ignored (the BEIR default), and every judged query counts, even one with no hits.
"""

import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag_core.observability.progress import QUIET, ProgressReporter
from rag_core.retrieval.cache import QueryCache
from rag_core.retrieval.engine import Mode, RetrievalEngine, RetrievalResult, SearchOptions
from rag_core.retrieval.fusion import FusionMethod

BATCH_SIZE = 64  # queries per search_many call in an evaluation: see benchmarks/eval_speed.py
LATENCY_SAMPLE = 100  # queries timed one at a time for an evaluation's latency figures
LATENCY_SEED = 0


@dataclass(frozen=True)
class BeirDataset:
    root: Path
    corpus: Path
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


@dataclass(frozen=True)
class EvaluationReport:
    ndcg_at_10: float
    recall_at_100: float
    mrr_at_10: float
    queries: int
    latency_p50_ms: float
    latency_p95_ms: float
    latency_queries: int  # how many queries, searched one at a time, the latency figures come from

    def as_json(self) -> dict:
        return {
            "ndcg@10": round(self.ndcg_at_10, 5),
            "recall@100": round(self.recall_at_100, 5),
            "mrr@10": round(self.mrr_at_10, 5),
            "queries": self.queries,
            "latency_ms": {"p50": round(self.latency_p50_ms, 2), "p95": round(self.latency_p95_ms, 2)},
            "latency_queries": self.latency_queries,
        }


Run = dict[str, list[tuple[str, float]]]
ResultHook = Callable[[str, RetrievalResult], None]


def load_beir(root: Path, split: str = "test") -> BeirDataset:
    corpus = next((root / n for n in ("corpus.jsonl.gz", "corpus.jsonl") if (root / n).is_file()), None)
    qrels_path = root / "qrels" / f"{split}.tsv"
    for path, what in (
        (corpus, "corpus.jsonl(.gz)"),
        (root / "queries.jsonl", "queries.jsonl"),
        (qrels_path, f"qrels/{split}.tsv"),
    ):
        if path is None or not path.is_file():
            raise FileNotFoundError(
                f"{root} has no {what}; a BEIR dataset folder holds corpus.jsonl(.gz), "
                "queries.jsonl and qrels/<split>.tsv."
            )
    qrels: dict[str, dict[str, int]] = {}
    for number, line in enumerate(qrels_path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split("\t")
        if number == 1 and fields[0] == "query-id":
            continue
        if len(fields) != 3:
            raise ValueError(f"{qrels_path}:{number}: expected 'query-id<TAB>corpus-id<TAB>score', got {line!r}")
        qrels.setdefault(fields[0], {})[fields[1]] = int(fields[2])
    queries = {}
    with (root / "queries.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            if str(record["_id"]) in qrels:
                queries[str(record["_id"])] = record["text"]
    missing = sorted(set(qrels) - set(queries))
    if missing:
        raise ValueError(f"{len(missing)} judged queries are not in queries.jsonl (e.g. {missing[:3]}).")
    return BeirDataset(root=root, corpus=corpus, queries=queries, qrels=qrels)


def ndcg_at_k(ranked: Sequence[str], relevant: dict[str, int], k: int) -> float:
    dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at_k(ranked: Sequence[str], relevant: dict[str, int], k: int) -> float:
    positives = {d for d, g in relevant.items() if g > 0}
    return len(positives & set(ranked[:k])) / len(positives) if positives else 0.0


def mrr_at_k(ranked: Sequence[str], relevant: dict[str, int], k: int) -> float:
    return next((1.0 / (i + 1) for i, d in enumerate(ranked[:k]) if relevant.get(d, 0) > 0), 0.0)


def score_run(run: Run, qrels: dict[str, dict[str, int]]) -> tuple[float, float, float]:
    ranked = {q: [d for d, _ in run.get(q, [])] for q in qrels}
    return (
        float(np.mean([ndcg_at_k(ranked[q], qrels[q], 10) for q in qrels])),
        float(np.mean([recall_at_k(ranked[q], qrels[q], 100) for q in qrels])),
        float(np.mean([mrr_at_k(ranked[q], qrels[q], 10) for q in qrels])),
    )


def evaluate(
    engine: RetrievalEngine,
    dataset: BeirDataset,
    options: SearchOptions,
    on_result: ResultHook | None = None,
    progress: ProgressReporter = QUIET,
    *,
    batch_size: int = BATCH_SIZE,
    latency_sample: int | None = LATENCY_SAMPLE,
) -> tuple[EvaluationReport, Run]:
    """The quality figures from every judged query searched ``batch_size`` at a time (one embedding call and one
    search per leg per batch, where one query at a time pays each call's fixed cost per query), then the latency
    figures from a fixed, seeded sample of ``latency_sample`` queries searched one at a time as a user would, past
    the query cache so each is a real search. ``latency_sample=0``: every query one at a time, its result used for
    both (latency over all queries, slower). Either way gives the same metrics, and the same ranking but for
    documents tied to rounding: a batch's scores come from matrix products, whose float sums run in another order
    than one query's (~1e-15 apart; ~1e-6 with Lite's float32 in-process dense copy, which swapped two documents
    in 1 of SciFact's 1,109 queries). ``latency_sample=None``: no latency figures (NaN), for callers that only
    compare rankings. ``on_result(qid, result)`` sees each query's whole result once."""
    if batch_size < 1 or (latency_sample is not None and latency_sample < 0):
        raise ValueError(f"batch_size must be >= 1 and latency_sample >= 0, got {batch_size} and {latency_sample}.")
    ids = list(dataset.queries)
    run: Run = {}

    def keep(qid: str, result: RetrievalResult) -> None:
        if on_result is not None:
            on_result(qid, result)
        run[qid] = [
            (c.doc_id, c.fused_score if c.rerank_score is None else c.rerank_score)
            for c in result.results
            if c.doc_id != qid
        ][:100]

    with progress.bar("eval", "queries", total=len(ids)) as bar:
        if latency_sample == 0:
            per_query_ms = []
            for qid in bar.iterate(ids):
                elapsed_ms, result = _timed(engine, dataset.queries[qid], options)
                per_query_ms.append(elapsed_ms)
                keep(qid, result)
        else:
            for start in range(0, len(ids), batch_size):
                batch = ids[start : start + batch_size]
                for qid, result in zip(batch, engine.search_many([dataset.queries[q] for q in batch], options)):
                    keep(qid, result)
                    bar.advance()
    if latency_sample is None:
        per_query_ms = []
    elif latency_sample:
        with _cache_set_aside(engine):
            per_query_ms = [
                _timed(engine, dataset.queries[qid], options)[0] for qid in latency_sample_ids(ids, latency_sample)
            ]
    ndcg, recall, mrr = score_run(run, dataset.qrels)
    p50, p95 = np.percentile(per_query_ms, [50, 95]) if per_query_ms else (float("nan"), float("nan"))
    return EvaluationReport(ndcg, recall, mrr, len(ids), float(p50), float(p95), len(per_query_ms)), run


def latency_sample_ids(ids: Sequence[str], size: int, seed: int = LATENCY_SEED) -> list[str]:
    """``size`` query ids drawn with a fixed seed from the sorted ids, so the sample is the same in every run
    whatever order the queries file lists them in; all of them when there are no more than ``size``."""
    ordered = sorted(ids)
    if size >= len(ordered):
        return ordered
    return [ordered[i] for i in sorted(np.random.default_rng(seed).choice(len(ordered), size, replace=False))]


def _timed(engine: RetrievalEngine, query: str, options: SearchOptions) -> tuple[float, RetrievalResult]:
    """One query searched alone, as a user sends it: milliseconds and the result."""
    tick = time.perf_counter()
    result = engine.search_many([query], options)[0]
    return (time.perf_counter() - tick) * 1000, result


@contextmanager
def _cache_set_aside(engine: RetrievalEngine) -> Iterator[None]:
    """A cache that holds nothing while the latency sample runs: the batched pass has just cached every query, and a
    timed cache hit would measure a dictionary lookup, not a search. The engine's own cache is put back after."""
    kept = engine.cache
    engine.cache = QueryCache(0, kept.ttl_s)
    try:
        yield
    finally:
        engine.cache = kept


def write_trec_run(run: Run, path: Path, tag: str) -> None:
    """``qid Q0 docid rank score tag``, at most 100 documents per query: readable by trec_eval and ranx."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for qid, hits in run.items():
            for rank, (doc_id, score) in enumerate(hits[:100], 1):
                out.write(f"{qid} Q0 {doc_id} {rank} {score:.6f} {tag}\n")


def dataset_alias(root: Path) -> str:
    return "eval_" + "".join(c if c.isalnum() else "_" for c in root.resolve().name)


def evaluation_options(
    engine: RetrievalEngine, *, mode: Mode = "hybrid", alpha: float | None = None, fusion: FusionMethod | None = None
) -> SearchOptions:
    """How ``rag eval`` searches: whole documents, 100 kept per query (Recall@100), at least 300 candidates a leg."""
    return engine.options(
        mode=mode,
        top_k=100,
        rerank_top_k=100,
        alpha=alpha,
        fusion=fusion,
        candidates=max(engine.config.retrieval.candidates, 300),
        document_level=True,
    )
