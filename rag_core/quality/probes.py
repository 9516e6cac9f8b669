"""A probe set built from the corpus itself: queries derived from sampled chunks, each with the document it came
from as its known relevant answer (the pseudo-query idea behind GPL and InPars, without a model download).

Most users have no labelled queries for their own documents, so the re-index gate, drift and the risk signal
would otherwise be judged on someone else's data. A corpus labels itself: a query derived from a passage has that
passage's document as a relevant answer. The probe set is a BEIR folder (``queries.jsonl``, ``qrels/test.tsv``)
plus ``probe_set.json`` naming the version it was built for, so ``rag eval`` reads it like any labelled set.

How a query is derived (``derive_query``): the chunk's most salient sentence (the highest mean inverse document
frequency among sentences with enough content words), as written, without its ``MASKED`` rarest content words.
Dropping the rarest terms keeps a verbatim match from making every probe trivial: what is left must be found
through the sentence's meaning and its commoner words, as a user's paraphrase would be. Probes whose query
the chunk still contains verbatim, or that keep too few words, are dropped and counted.
"""

import hashlib
import json
import logging
import math
import random
import re
import shutil
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from rag_core.config import RAGConfig
from rag_core.index.manager import MilvusIndexManager
from rag_core.quality.bootstrap import per_query_ndcg
from rag_core.quality.evaluation import BeirDataset, evaluate, evaluation_options
from rag_core.retrieval.engine import Mode, RetrievalEngine
from rag_core.retrieval.lexical import tokenize

PROBE_SET_FILE = "probe_set.json"
ROW_FIELDS = ["chunk_id", "doc_id", "source", "text"]
DEFAULT_PROBES = 200
MIN_PROBES = 30  # fewer probes cannot tell a real loss from noise: callers fall back and say so
SEED = 0
MIN_CONTENT_WORDS = 6  # a sentence with fewer content words is not specific enough to stand for its chunk
MAX_QUERY_WORDS = 32  # words kept in a query, at most: a long sentence is cut
MASKED = 2  # the rarest content words removed from each query
LENGTH_BANDS = 3  # strata by chunk length within each source (short, medium, long)

log = logging.getLogger(__name__)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")
WORD = re.compile(r"[A-Za-z][A-Za-z0-9'-]*|\d+(?:\.\d+)?")


class ProbeSetError(ValueError):
    """The corpus cannot give a probe set, or a stored one is unreadable or belongs to another version."""


@dataclass(frozen=True)
class Probe:
    query_id: str
    query: str
    doc_id: str
    chunk_id: str
    source: str

    @property
    def key(self) -> str:
        """Names this probe (id, query and answer) without its text: a score kept for it elsewhere, such as a
        drift snapshot's, holds none of the document's words, and cannot be matched to another set's probe."""
        text = json.dumps([self.query_id, self.query, self.doc_id])
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class ProbeSet:
    collection: str  # the version the probes were built from
    data_version: int
    probes: list[Probe]
    sampled: int  # chunks drawn; the difference from len(probes) was dropped, by reason in ``dropped``
    dropped: dict[str, int] = field(default_factory=dict)
    seed: int = SEED

    def write(self, folder: Path) -> Path:
        """As a BEIR folder (without a corpus: the collection is the corpus) plus ``probe_set.json``."""
        (folder / "qrels").mkdir(parents=True, exist_ok=True)
        with (folder / "queries.jsonl").open("w", encoding="utf-8") as out:
            for probe in self.probes:
                out.write(json.dumps({"_id": probe.query_id, "text": probe.query}) + "\n")
        (folder / "qrels" / "test.tsv").write_text(
            "query-id\tcorpus-id\tscore\n" + "".join(f"{p.query_id}\t{p.doc_id}\t1\n" for p in self.probes),
            encoding="utf-8",
        )
        meta = {k: v for k, v in asdict(self).items() if k != "probes"}
        meta["probes"] = [{"query_id": p.query_id, "chunk_id": p.chunk_id, "source": p.source} for p in self.probes]
        (folder / PROBE_SET_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
        return folder

    @property
    def qrels(self) -> dict[str, dict[str, int]]:
        return {p.query_id: {p.doc_id: 1} for p in self.probes}

    @property
    def queries(self) -> dict[str, str]:
        return {p.query_id: p.query for p in self.probes}

    def restricted(self, query_ids: Iterable[str]) -> "ProbeSet":
        kept = set(query_ids)
        return replace(self, probes=[p for p in self.probes if p.query_id in kept])

    @classmethod
    def read(cls, folder: Path) -> "ProbeSet":
        meta_path = folder / PROBE_SET_FILE
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            queries = {}
            for line in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                queries[record["_id"]] = record["text"]
            relevant = {}
            for line in (folder / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]:
                query_id, doc_id, _ = line.split("\t")
                relevant[query_id] = doc_id
            probes = [
                Probe(p["query_id"], queries[p["query_id"]], relevant[p["query_id"]], p["chunk_id"], p["source"])
                for p in meta["probes"]
            ]
            return cls(
                collection=meta["collection"],
                data_version=int(meta["data_version"]),
                probes=probes,
                sampled=int(meta["sampled"]),
                dropped=dict(meta.get("dropped", {})),
                seed=int(meta.get("seed", SEED)),
            )
        except FileNotFoundError as error:
            raise ProbeSetError(f"{folder} is not a probe set: {Path(error.filename).name} is missing") from None
        except (KeyError, ValueError, TypeError) as error:
            raise ProbeSetError(
                f"{meta_path} or its queries/qrels are unreadable ({type(error).__name__}: {error}); rebuild it "
                "with `rag probes build`"
            ) from None


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(" ".join(text.split())) if s.strip()]


def content_words(text: str) -> list[str]:
    """The words a query keeps: the lexical index's own notion of a content word (not a stopword), as written."""
    words = WORD.findall(text)
    kept = tokenize(words, as_words=True)
    return [word for word, stems in zip(words, kept, strict=True) if stems]


def document_frequencies(texts: Iterable[str]) -> tuple[Counter[str], int]:
    """How many texts each lower-cased content word occurs in, and how many texts there were."""
    frequencies: Counter[str] = Counter()
    count = 0
    for text in texts:
        frequencies.update({w.lower() for w in WORD.findall(text)})
        count += 1
    return frequencies, count


def derive_query(text: str, idf: Mapping[str, float]) -> str | None:
    """The salient sentence as written, without its ``MASKED`` rarest content words; None when no sentence is
    specific enough. A whole sentence reads as a user's question does, so the dense leg is judged on the kind of
    text it embeds; the rarest words, which only this document may have, are what a verbatim match would key on."""
    best: tuple[float, str, list[str]] | None = None
    for sentence in sentences(text):
        words = content_words(sentence)
        if len(words) < MIN_CONTENT_WORDS:
            continue
        salience = sum(idf.get(w.lower(), 0.0) for w in words) / len(words)
        if best is None or salience > best[0]:
            best = (salience, sentence, words)
    if best is None:
        return None
    _, sentence, words = best
    masked = {w.lower() for w in sorted(words, key=lambda w: -idf.get(w.lower(), 0.0))[:MASKED]}
    kept = [w for w in WORD.findall(sentence) if w.lower() not in masked]
    return " ".join(kept[:MAX_QUERY_WORDS])


def stratified_sample(rows: Sequence[Mapping], n: int, seed: int) -> list[Mapping]:
    """``n`` rows drawn without replacement, each (source, length band) stratum in proportion to its size, so a
    large source or many short chunks cannot crowd the others out."""
    by_source: dict[str, list[Mapping]] = defaultdict(list)
    for row in rows:
        by_source[row["source"]].append(row)
    strata: list[list[Mapping]] = []
    for source_rows in by_source.values():
        ordered = sorted(source_rows, key=lambda r: (len(r["text"]), r["chunk_id"]))
        size = math.ceil(len(ordered) / LENGTH_BANDS)
        strata += [ordered[i : i + size] for i in range(0, len(ordered), size)]
    rng = random.Random(seed)
    total = sum(len(s) for s in strata)
    quotas = [len(s) * min(n, total) / total for s in strata]
    counts = [math.floor(q) for q in quotas]
    for i in sorted(range(len(strata)), key=lambda i: counts[i] - quotas[i])[: min(n, total) - sum(counts)]:
        counts[i] += 1
    return [row for stratum, k in zip(strata, counts, strict=True) for row in rng.sample(stratum, k)]


Derivation = Callable[[str, Mapping[str, float]], str | None]  # (chunk text, idf) -> query, None: no usable one


def build_probe_set(
    rows: Sequence[Mapping],
    *,
    collection: str,
    data_version: int,
    n: int = DEFAULT_PROBES,
    seed: int = SEED,
    derive: Derivation = derive_query,
) -> ProbeSet:
    """Probes from ``rows`` (every chunk of ``collection``: chunk_id, doc_id, source, text), at most one per chunk;
    ``derive`` makes a chunk's query (other derivations are compared in ``benchmarks/probe_derivations.py``).
    Raises ``ProbeSetError`` naming the numbers when fewer than ``MIN_PROBES`` probes survive."""
    if n < 1:
        raise ProbeSetError(f"A probe set needs at least 1 probe; {n} was asked for")
    frequencies, count = document_frequencies(r["text"] for r in rows)
    idf = {word: math.log((count + 1) / (df + 0.5)) for word, df in frequencies.items()}
    # Draw ``n`` chunks and ``n`` more to replace those dropped, each draw stratified. Each document gives one
    # probe before any gives a second, so a long document cannot crowd out the others; a corpus of few long
    # documents still gets enough probes.
    drawn = stratified_sample(rows, n, seed)
    chosen = {row["chunk_id"] for row in drawn}
    drawn += stratified_sample([r for r in rows if r["chunk_id"] not in chosen], n, seed + 1)  # replacements
    probes: list[Probe] = []
    dropped: Counter[str] = Counter()
    probed: Counter[str] = Counter()
    for rounds in range(1, len(drawn) + 1):
        if len(probes) == n or not drawn:
            break
        later = []
        for row in drawn:
            if len(probes) == n:
                break
            if probed[row["doc_id"]] >= rounds:
                later.append(row)
                continue
            query = derive(row["text"], idf)
            if query is None:
                dropped["no sentence with enough content words"] += 1
            elif query.lower() in " ".join(row["text"].split()).lower():
                dropped["verbatim in its chunk"] += 1
            else:
                probed[row["doc_id"]] += 1
                probes.append(Probe(f"p{len(probes):04d}", query, row["doc_id"], row["chunk_id"], row["source"]))
        drawn = later
    if len(probes) < MIN_PROBES:
        reasons = ", ".join(f"{k}: {v}" for k, v in dropped.items()) or "none dropped"
        raise ProbeSetError(
            f"{collection} gives only {len(probes)} probes from {len(rows)} chunks ({reasons}); at least "
            f"{MIN_PROBES} are needed to judge a version. Ingest more documents, or use a labelled dataset "
            "(quality_gate.dataset)."
        )
    return ProbeSet(
        collection=collection,
        data_version=data_version,
        probes=probes,
        sampled=min(len(rows), 2 * n),
        dropped=dict(dropped),
        seed=seed,
    )


def probe_ndcg(
    engine: RetrievalEngine, probe_set: ProbeSet, mode: Mode = "hybrid", *, alpha: float | None = None
) -> dict[str, float]:
    """Each probe's nDCG@10 as ``engine`` answers it in ``mode`` (and fusion weight ``alpha``, default as served),
    searched as `rag eval` searches (so the figures compare with its) but in batches: a comparison needs no
    latency."""
    probes = BeirDataset(root=Path(), corpus=Path(), queries=probe_set.queries, qrels=probe_set.qrels)
    run = evaluate(engine, probes, evaluation_options(engine, mode=mode, alpha=alpha), latency_sample=None)[1]
    return per_query_ndcg(run, probe_set.qrels)


def stored_probe_set(config: RAGConfig, collection: str) -> ProbeSet | None:
    """The probe set stored for ``collection``; None when there is none, it is for another version or too small to
    judge by, or it cannot be read (said in the log: `rag probes build` replaces it)."""
    try:
        stored = ProbeSet.read(probe_set_path(config, collection))
    except ProbeSetError as error:
        if probe_set_path(config, collection).exists():
            log.warning("%s", error)
        return None
    return stored if stored.collection == collection and len(stored.probes) >= MIN_PROBES else None


def probe_set_path(config: RAGConfig, collection: str) -> Path:
    """Where the probe set of one version is kept: next to its drift snapshot."""
    return Path(config.quality.drift_dir) / "probes" / collection


def store_probe_set(config: RAGConfig, probe_set: ProbeSet) -> Path:
    """Write ``probe_set`` as its version's own, replacing an older one."""
    folder = probe_set_path(config, probe_set.collection)
    shutil.rmtree(folder, ignore_errors=True)
    return probe_set.write(folder)


def build_for_version(
    manager: MilvusIndexManager, collection: str, *, n: int = DEFAULT_PROBES, seed: int = SEED
) -> ProbeSet:
    """The probe set of ``collection`` (a version), from every one of its chunks."""
    rows = [row for batch in manager.iter_rows(collection, ROW_FIELDS) for row in batch]
    return build_probe_set(
        rows, collection=collection, data_version=manager.state(collection).data_version, n=n, seed=seed
    )


def erase_from_probe_sets(config: RAGConfig, doc_id: str) -> int:
    """Drop every probe derived from ``doc_id`` (its query is made of the document's words) from every stored probe
    set; returns how many probe sets held one. A set left with too few probes is deleted, so the next promotion or
    `rag probes build` makes a new one instead of judging on a handful."""
    touched = 0
    root = Path(config.quality.drift_dir) / "probes"
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            probe_set = ProbeSet.read(folder)
        except ProbeSetError:
            continue
        kept = [p for p in probe_set.probes if p.doc_id != doc_id]
        if len(kept) == len(probe_set.probes):
            continue
        touched += 1
        shutil.rmtree(folder)
        if len(kept) >= MIN_PROBES:
            ProbeSet(
                collection=probe_set.collection,
                data_version=probe_set.data_version,
                probes=kept,
                sampled=probe_set.sampled,
                dropped=probe_set.dropped
                | {"erased": probe_set.dropped.get("erased", 0) + len(probe_set.probes) - len(kept)},
                seed=probe_set.seed,
            ).write(folder)
    return touched


def probes_on_promotion(config: RAGConfig, manager: MilvusIndexManager) -> Callable[[str], None]:
    """The hook run when a version is promoted: its own probe set (``quality_gate.probe_set_size`` probes, none
    when 0). A corpus too small for one is said in the log (the gate then falls back to the risk signal); any
    other failure only warns, since ingestion must not fail for want of a probe set."""

    def build(collection: str) -> None:
        size = config.quality_gate.probe_set_size
        if not size:
            return
        try:
            probe_set = build_for_version(manager, collection, n=size)
            folder = store_probe_set(config, probe_set)
        except ProbeSetError as error:
            log.info("No probe set for %s: %s", collection, error)
            return
        except Exception as error:  # noqa: BLE001 - reported, never raised into ingestion
            log.warning("No probe set was built for %s (%s: %s).", collection, type(error).__name__, error)
            return
        log.info("Probe set of %s: %d probes in %s", collection, len(probe_set.probes), folder)

    return build
