"""Milvus Lite's dense leg served from the client-side copy of the vectors: the same hits as Milvus, kept current."""

from pathlib import Path

import numpy as np
import pytest

from rag_core.config import RAGConfig
from rag_core.retrieval.dense_mirror import DenseMirror
from tests.support.corpus import ingest
from tests.support.engines import engine_for

QUERIES = [
    "how does compaction purge deleted rows",
    "which graph index trades accuracy for speed",
    "collection version alias readers",
    "audit records days",
    "term frequency document length",
]


def with_dense_search(config: RAGConfig, choice: str) -> RAGConfig:
    return config.model_copy(update={"retrieval": config.retrieval.model_copy(update={"dense_search": choice})})


def test_mirror_ranks_by_cosine_best_first_and_survives_a_save(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(50, 8)).astype(np.float32) * rng.uniform(0.5, 3, size=(50, 1)).astype(np.float32)
    ids = [f"c{i}" for i in range(50)]
    mirror = DenseMirror.build(ids, [f"d{i // 5}" for i in range(50)], vectors, "COSINE")
    query = rng.normal(size=8).astype(np.float32)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosine = unit @ (query / np.linalg.norm(query))
    hits = mirror.search(query[None, :] * 4, limit=7)[0]  # the query's length must not matter under COSINE
    assert [h.chunk_id for h in hits] == [ids[i] for i in np.argsort(-cosine)[:7]]
    assert [h.score for h in hits] == pytest.approx(sorted(cosine, reverse=True)[:7], abs=1e-6)
    assert hits[0].doc_id == f"d{int(hits[0].chunk_id[1:]) // 5}"
    assert len(mirror.search(query, limit=500)[0]) == 50, "a limit beyond the rows returns every row"
    inner = DenseMirror.build(ids, ids, vectors, "IP").search(query, limit=1)[0][0]
    assert inner.chunk_id == ids[int(np.argmax(vectors @ query))], "IP keeps the vectors' lengths"
    mirror.save(tmp_path)
    loaded = DenseMirror.load(tmp_path)
    assert loaded is not None and loaded.search(query, limit=7)[0] == mirror.search(query, limit=7)[0]
    assert DenseMirror.load(tmp_path / "elsewhere") is None
    with pytest.raises(ValueError, match="retrieval.dense_search: milvus"):
        DenseMirror.build(ids, ids, vectors, "L2")


@pytest.mark.parametrize("milvus_uri", ["lite"], indirect=True)
def test_lite_dense_leg_matches_milvus_with_a_filter_or_without(config: RAGConfig, embedder) -> None:
    mirrored = engine_for(config, embedder=embedder)
    in_milvus = engine_for(with_dense_search(config, "milvus"), embedder=embedder)
    assert mirrored.dense_mirror_metric == "COSINE" and in_milvus.dense_mirror_metric is None
    milvus_searches = []
    search_in_milvus = mirrored.manager.search
    mirrored.manager.search = lambda *a, **k: milvus_searches.append(k["filter"]) or search_in_milvus(*a, **k)
    for query in QUERIES:
        for mode in ("dense", "hybrid"):
            ours, theirs = mirrored.search(query, mode=mode).results, in_milvus.search(query, mode=mode).results
            assert [r.chunk_id for r in ours] == [r.chunk_id for r in theirs], (query, mode)
            assert [r.fused_score for r in ours] == pytest.approx([r.fused_score for r in theirs], abs=1e-5)
    assert mirrored.client_index().dense is not None and in_milvus.client_index().dense is None
    for mode in ("dense", "hybrid"):
        ours = mirrored.search("vectors", mode=mode, filter='doc_id in ["retention", "sensor"]').results
        theirs = in_milvus.search("vectors", mode=mode, filter='doc_id in ["retention", "sensor"]').results
        assert ours and {r.doc_id for r in ours} <= {"retention", "sensor"}
        assert [r.chunk_id for r in ours] == [r.chunk_id for r in theirs], "the mask finds what Milvus's filter does"
    assert milvus_searches == [], "the mirror answered every dense search, filtered ones included"


@pytest.mark.parametrize("milvus_uri", ["lite"], indirect=True)
def test_mirror_follows_new_and_deleted_documents(config: RAGConfig, embedder) -> None:
    engine = engine_for(config, embedder=embedder)
    query = "zebra migration across the Mara river"
    assert engine.search(query, mode="dense").results[0].doc_id != "zebra"
    ingest(config, {"zebra": "Zebra migration crosses the Mara river every year."}, embedder)
    assert engine.search(query, mode="dense").results[0].doc_id == "zebra"
    engine.manager.delete_where(engine.serving_state().collection, 'doc_id == "zebra"')
    engine.manager.bump_data_version(engine.serving_state().collection)
    engine.invalidate()
    assert all(r.doc_id != "zebra" for r in engine.search(query, mode="dense").results)


@pytest.mark.parametrize("milvus_uri", ["lite"], indirect=True)
def test_a_metric_the_mirror_cannot_reproduce_is_refused_by_name(config: RAGConfig, embedder) -> None:
    l2 = config.model_copy(
        update={
            "index": config.index.model_copy(update={"metric_type": "L2"}),
            "retrieval": config.retrieval.model_copy(update={"dense_search": "client"}),
        }
    )
    with pytest.raises(ValueError, match="retrieval.dense_search is 'client' but index.metric_type is 'L2'"):
        _ = engine_for(l2, embedder=embedder).dense_mirror_metric
    assert engine_for(with_dense_search(l2, "auto"), embedder=embedder).dense_mirror_metric is None
