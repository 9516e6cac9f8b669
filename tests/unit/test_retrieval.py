"""The hybrid retrieval engine on Milvus Lite and the real server."""

import threading
import time
from pathlib import Path

import pytest
from pymilvus import MilvusException

from rag_core.config import RAGConfig
from rag_core.index.retry import MilvusUnavailableError
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.reindex import reindex
from rag_core.models.embedder import Embedder
from rag_core.retrieval.lexical import LexicalIndex
from tests.support.corpus import RETRIEVAL_DOCS as DOCS
from tests.support.corpus import ingest
from tests.support.engines import engine_for


def test_hybrid_finds_the_right_document_with_both_legs_scored(config: RAGConfig, embedder) -> None:
    engine = engine_for(config, embedder=embedder)
    result = engine.search("how does compaction purge deleted rows")
    assert result.lexical_backend == "local", "auto uses the client-side BM25 on Lite and on Milvus 2.3"
    assert len(result.results) == 3
    top = result.results[0]
    assert top.doc_id == "compaction" and "purges deleted rows" in top.text
    assert top.dense_rank is not None and top.lexical_rank == 1 and top.lexical_score > 0
    assert [r.fused_score for r in result.results] == sorted((r.fused_score for r in result.results), reverse=True)
    assert set(result.timings_ms) >= {"embed", "dense", "sparse", "fusion", "fetch", "rerank", "retrieval"}


def test_modes_filters_and_document_level(config: RAGConfig, embedder) -> None:
    engine = engine_for(config, embedder=embedder)
    lexical = engine.search("inverse document frequency", mode="bm25").results
    assert lexical[0].doc_id == "bm25" and all(r.dense_rank is None for r in lexical)
    dense = engine.search("which graph index trades accuracy for speed", mode="dense").results
    assert dense[0].doc_id == "hnsw" and all(r.lexical_rank is None for r in dense)
    only = engine.search("vectors", mode="dense", filter='doc_id in ["retention", "sensor"]').results
    assert {r.doc_id for r in only} <= {"retention", "sensor"} and only
    filtered = engine.search("collection version alias readers", filter='doc_id in ["sensor", "retention"]').results
    assert filtered and {r.doc_id for r in filtered} <= {"sensor", "retention"}, "the filter applies to both legs"
    assert all(r.lexical_rank is None or r.doc_id in {"sensor", "retention"} for r in filtered)
    documents = engine.search("collection", document_level=True, top_k=6, rerank_top_k=6).results
    assert len({r.doc_id for r in documents}) == len(documents)


def test_a_filter_masks_client_side_bm25_before_its_top_is_taken(config: RAGConfig, embedder) -> None:
    """A filter applied after BM25 took its candidates left short or empty answers: the matching documents that
    rank below the candidates were never seen. Issue 20 needs the same for access labels."""
    engine = engine_for(config, embedder=embedder)
    query = "collection rows document score query vectors"  # words of six of the eight documents
    everything = engine.search(query, mode="bm25", top_k=20, rerank_top_k=20, candidates=20).results
    assert len(everything) >= 3
    lowest = everything[-1].doc_id
    for level in (False, True):
        found = engine.search(
            query,
            mode="bm25",
            top_k=1,
            rerank_top_k=1,
            candidates=1,
            document_level=level,
            filter=f'doc_id == "{lowest}"',
        ).results
        assert [r.doc_id for r in found] == [lowest], "the one matching document, though 1 candidate was taken"
    two = engine.search(
        query, mode="bm25", top_k=2, rerank_top_k=2, candidates=2, filter=f'doc_id != "{everything[0].doc_id}"'
    ).results
    assert len(two) == 2 and everything[0].doc_id not in {r.doc_id for r in two}, "a full top-k of the rest"
    with pytest.raises(MilvusException):  # evaluated even when no document shares a word with the query
        engine.search("qqqzzz", mode="bm25", filter='doc_id ==== "x"')


def test_cache_hits_and_a_new_index_version_invalidates_it(config: RAGConfig, embedder, tmp_path: Path) -> None:
    engine = engine_for(config, embedder=embedder)
    first = engine.search("alias swaps indexes")
    again = engine.search("  Alias swaps   INDEXES ")
    assert not first.cached and again.cached and again.results == first.results
    assert engine.cache.stats.hits == 1
    assert engine.latency.percentiles()["retrieval"].count == 1, "the cache hit counts; the cold start does not"
    rebuilt = config.model_copy(update={"index": config.index.model_copy(update={"M": 8})})
    reindex(RagContext(rebuilt, embedder=embedder))  # a new version, promoted behind the alias
    engine.manager.forget_serving()  # as if the alias refresh interval had passed
    after = engine.search("alias swaps indexes")
    assert not after.cached and after.collection.endswith("__v2") and after.results[0].doc_id == "alias"


def test_the_first_query_reports_loading_apart_from_its_own_stages(config: RAGConfig) -> None:
    """The model load used to be the first query's "embed" (6 to 10 s of a CLI query), and so its p95 and the
    slowest queries: it is the ``load`` stage now, once per engine, kept out of embed, retrieval and percentiles."""
    engine = engine_for(config, embedder=Embedder(config.embedding))  # not loaded yet
    first = engine.search("alias swaps indexes")
    second = engine.search("sensors start runs")
    assert first.timings_ms["load"] > first.timings_ms["embed"] and "load" not in second.timings_ms
    assert engine.latency.percentiles()["load"].count == 0 and engine.latency.cold_start_ms()["load"].count == 1
    lexical_first = engine_for(config, embedder=Embedder(config.embedding))
    assert "load" not in lexical_first.search("alias swaps indexes", mode="bm25").timings_ms, "BM25 encodes nothing"
    assert "load" in lexical_first.search("alias swaps indexes").timings_ms, "the first query that encodes, loads"


def test_client_side_bm25_follows_new_documents(config: RAGConfig, embedder) -> None:
    engine = engine_for(config, embedder=embedder)
    assert engine.search("zebra migration", mode="bm25").results == []
    ingest(config, {"zebra": "Zebra migration crosses the Mara river every year."}, embedder)
    assert engine.search("zebra migration", mode="bm25").results[0].doc_id == "zebra"


@pytest.mark.parametrize("milvus_uri", ["lite"], indirect=True)
def test_milvus_bm25_and_client_bm25_agree(config: RAGConfig, embedder) -> None:
    """Both lexical paths give the same hybrid ranking (tolerance: the top 3 overlap in at least 2 of 3 documents;
    Milvus Lite 3.2 does not stem, the client-side index does)."""
    local = engine_for(config, embedder=embedder)
    milvus_config = config.model_copy(
        update={"retrieval": config.retrieval.model_copy(update={"lexical_backend": "milvus"})}
    )
    server_side = engine_for(milvus_config, embedder=embedder)
    assert server_side.lexical_backend == "milvus"
    for query in ("cross-encoder reranker relevance", "term frequency document length", "audit records days"):
        a = [r.doc_id for r in local.search(query).results]
        b = [r.doc_id for r in server_side.search(query).results]
        assert a[0] == b[0] and len(set(a) & set(b)) >= 2, (query, a, b)
    filtered = server_side.search("collection version", filter='doc_id == "alias"').results
    assert {r.doc_id for r in filtered} == {"alias"}


@pytest.mark.server
@pytest.mark.parametrize("milvus_uri", ["server"], indirect=True)
def test_milvus_23_has_no_bm25_function_so_milvus_backend_is_refused(config: RAGConfig, embedder) -> None:
    engine = engine_for(
        config.model_copy(update={"retrieval": config.retrieval.model_copy(update={"lexical_backend": "milvus"})}),
        embedder=embedder,
    )
    with pytest.raises(ValueError, match="has no BM25 function"):
        engine.search("compaction")


def test_corpus_normalisation_scores_each_leg_against_the_whole_index(config: RAGConfig, embedder) -> None:
    engine = engine_for(config, embedder=embedder)
    query = "how does compaction purge deleted rows"
    result = engine.search(query, normalization="corpus", alpha=0.7, document_level=True, top_k=8, rerank_top_k=8)
    client = engine.client_index()
    dense = client.vectors.score_moments(embedder.encode_queries([query]))[0]
    lexical = client.documents.rank([query], 1)[0].moments
    assert len(result.results) == len(DOCS) and result.results[0].doc_id == "compaction"
    for r in result.results:
        assert r.dense_score is not None and r.lexical_score is not None, "every candidate fuses on true scores"
        assert r.lexical_rank is None or r.lexical_score > 0, "a rank only for BM25's own candidates"
        expected = 0.7 * (r.dense_score - dense.mean) / dense.std + 0.3 * (r.lexical_score - lexical.mean) / lexical.std
        assert r.fused_score == pytest.approx(expected, rel=1e-4, abs=1e-5)
    whole = engine.search(query, mode="bm25", document_level=True).results[0]
    assert whole.lexical_score == pytest.approx(client.documents.search([query], 1)[0][0].score), (
        "document-level BM25 scores whole documents"
    )


def test_the_dense_leg_in_milvus_runs_while_bm25_ranks(
    config: RAGConfig, embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a server the dense leg is mostly a wait for Milvus: the caller's thread ranks BM25 meanwhile. Same
    results, the dense stage timed as long as Milvus took, and a failed search still fails the query."""
    config = config.model_copy(
        update={"retrieval": config.retrieval.model_copy(update={"dense_search": "milvus", "cache_size": 0})}
    )
    engine = engine_for(config, embedder=embedder)
    query = "how does compaction purge deleted rows"
    before = [(r.chunk_id, r.fused_score) for r in engine.search(query).results]
    events: list[tuple[str, bool]] = []
    search, rank = engine.manager.search, LexicalIndex.rank

    def slow_search(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        events.append(("dense starts", threading.current_thread() is threading.main_thread()))
        time.sleep(0.5)
        try:
            return search(*args, **kwargs)
        finally:
            events.append(("dense ends", threading.current_thread() is threading.main_thread()))

    def recorded_rank(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        events.append(("bm25 ranks", threading.current_thread() is threading.main_thread()))
        return rank(self, *args, **kwargs)

    monkeypatch.setattr(engine.manager, "search", slow_search)
    monkeypatch.setattr(LexicalIndex, "rank", recorded_rank)
    result = engine.search(query)
    assert sorted(events[:2]) == [("bm25 ranks", True), ("dense starts", False)]
    assert events[2:] == [("dense ends", False)]
    assert [(r.chunk_id, r.fused_score) for r in result.results] == before
    assert result.timings_ms["dense"] >= 500 > result.timings_ms["sparse"]

    def failing_search(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise MilvusUnavailableError("Milvus at test is unreachable")

    monkeypatch.setattr(engine.manager, "search", failing_search)
    with pytest.raises(MilvusUnavailableError, match="unreachable"):
        engine.search(query)
