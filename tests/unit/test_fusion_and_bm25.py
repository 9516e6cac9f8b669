"""Fusion arithmetic, and the client-side BM25 checked against rank-bm25 as an independent oracle."""

import math
from pathlib import Path

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from rag_core.retrieval.client_index import documents_from_chunks
from rag_core.retrieval.fusion import LegHit, ScoreMoments, fuse
from rag_core.retrieval.lexical import LexicalIndex, tokenize
from rag_core.retrieval.moments import VectorMoments
from rag_core.types import Chunk

CORPUS = [
    "Milvus stores dense vectors and builds HNSW graphs for fast approximate search.",
    "BM25 ranks documents by term frequency, inverse document frequency and length.",
    "Dagster sensors watch folders and request runs when files change.",
    "Running the compaction job merges small segments and purges deleted rows.",
    "A reranker reads the query and each passage together and scores relevance.",
    "Vectors are normalised so cosine similarity equals the inner product.",
]


class LuceneIdfOracle(BM25Okapi):
    """rank-bm25's term-frequency machinery with the Lucene idf, log(1 + (N - df + 0.5) / (df + 0.5))."""

    def _calc_idf(self, nd: dict) -> None:
        self.idf = {w: math.log(1 + (self.corpus_size - df + 0.5) / (df + 0.5)) for w, df in nd.items()}


def test_bm25_scores_match_the_rank_bm25_oracle() -> None:
    ids = [f"c{i}" for i in range(len(CORPUS))]
    index = LexicalIndex.build(ids, ids, CORPUS, collection="x", k1=1.2, b=0.75)
    oracle = LuceneIdfOracle(tokenize(CORPUS, as_words=True), k1=1.2, b=0.75)
    for query in ("running compaction of segments", "vector search with HNSW", "term frequency ranking"):
        # Lucene leaves out rank-bm25's (k1 + 1) factor
        expected = oracle.get_scores(tokenize([query], as_words=True)[0]) / (1.2 + 1)
        hits = index.search([query], limit=len(CORPUS))[0]
        assert hits, query
        for hit in hits:
            assert hit.score == pytest.approx(expected[int(hit.chunk_id[1:])], rel=1e-4)
        assert [h.chunk_id for h in hits] == [
            f"c{i}" for i in sorted(range(len(CORPUS)), key=lambda i: -expected[i]) if expected[i] > 0
        ]


def test_bm25_stems_and_drops_stopwords_and_survives_a_save(tmp_path: Path) -> None:
    ids = [f"c{i}" for i in range(len(CORPUS))]
    index = LexicalIndex.build(ids, [f"d{i}" for i in range(len(CORPUS))], CORPUS, collection="col__v3", k1=1.5, b=0.75)
    assert {h.chunk_id for h in index.search(["run"], 3)[0]} == {"c2", "c3"}, "'run' finds 'runs' and 'Running'"
    assert index.search(["the and of"], 3) == [[]], "stopwords alone match nothing"
    index.save(tmp_path / "bm25")
    loaded = LexicalIndex.load(tmp_path / "bm25")
    assert loaded.collection == "col__v3" and len(loaded) == len(CORPUS)
    assert loaded.search(["reranker passage"], 2) == index.search(["reranker passage"], 2)
    with pytest.raises(FileNotFoundError, match="materialize the bm25_index asset"):
        LexicalIndex.load(tmp_path / "missing")


def test_bm25_finds_words_inside_text_written_without_spaces() -> None:
    """Chinese and Japanese sentences have no spaces: each used to be one token, found only by the whole sentence."""
    index = LexicalIndex.build(
        ["zh", "ja", "en"],
        ["zh.md", "ja.md", "en.md"],
        ["向量数据库支持混合检索和压缩。", "東京の天気は晴れです。", "Vector databases support hybrid search."],
        collection="c",
        k1=1.5,
        b=0.75,
    )
    assert [h.chunk_id for h in index.search(["混合检索"], 3)[0]] == ["zh"]
    assert [h.chunk_id for h in index.search(["天気"], 3)[0]] == ["ja"]
    assert [h.chunk_id for h in index.search(["hybrid search"], 3)[0]] == ["en"]
    assert tokenize(["hybrid databases"], as_words=True) == [["hybrid", "databas"]], "other text is as before"


def test_weighted_fusion_normalises_each_leg_and_weights_dense_by_alpha() -> None:
    dense = [LegHit("a", 0.9), LegHit("b", 0.5), LegHit("c", 0.1)]
    lexical = [LegHit("c", 12.0), LegHit("d", 6.0), LegHit("a", 0.0)]
    fused = {h.key: h for h in fuse(dense, lexical, method="weighted", alpha=0.7)}
    assert fused["a"].fused_score == pytest.approx(0.7 * 1.0 + 0.3 * 0.0)
    assert fused["b"].fused_score == pytest.approx(0.7 * 0.5)
    assert fused["c"].fused_score == pytest.approx(0.7 * 0.0 + 0.3 * 1.0)
    assert fused["d"].fused_score == pytest.approx(0.3 * 0.5)
    assert (fused["a"].dense_rank, fused["a"].lexical_rank, fused["d"].dense_rank) == (1, 3, None)
    ranking = [h.key for h in fuse(dense, lexical, method="weighted", alpha=0.7)]
    assert ranking == ["a", "b", "c", "d"]
    assert [h.key for h in fuse(dense, lexical, alpha=0.0)][0] == "c", "alpha 0 is BM25 only"


def test_rrf_sums_reciprocal_ranks() -> None:
    dense = [LegHit("a", 0.9), LegHit("b", 0.8)]
    lexical = [LegHit("b", 3.0), LegHit("c", 2.0)]
    fused = fuse(dense, lexical, method="rrf", rrf_k=60)
    assert [h.key for h in fused] == ["b", "a", "c"]
    assert fused[0].fused_score == pytest.approx(1 / 62 + 1 / 61)
    with pytest.raises(ValueError, match="Unknown fusion method"):
        fuse(dense, lexical, method="max")  # type: ignore[arg-type]


def test_zscore_fusion_standardises_each_leg_and_floors_missing_candidates() -> None:
    dense = [LegHit("a", 0.9), LegHit("b", 0.7), LegHit("c", 0.5)]
    lexical = [LegHit("c", 30.0), LegHit("d", 10.0)]
    fused = {h.key: h.fused_score for h in fuse(dense, lexical, method="weighted", alpha=0.5, normalization="zscore")}
    z = 0.2 / (((0.2**2 + 0 + 0.2**2) / 3) ** 0.5)  # dense: mean 0.7, a and c one step above and below
    assert fused["a"] == pytest.approx(0.5 * z + 0.5 * -1.0), "a is missing from BM25: it gets BM25's lowest, -1"
    assert fused["c"] == pytest.approx(0.5 * -z + 0.5 * 1.0)
    assert fused["d"] == pytest.approx(0.5 * -z + 0.5 * -1.0), "d is missing from dense: dense's lowest"


def test_corpus_fusion_standardises_against_the_given_moments() -> None:
    dense = [LegHit("a", 0.9), LegHit("b", 0.5)]
    lexical = [LegHit("b", 12.0), LegHit("a", 2.0), LegHit("c", 8.0)]
    fused = {
        h.key: h.fused_score
        for h in fuse(
            dense,
            lexical,
            alpha=0.7,
            normalization="corpus",
            dense_moments=ScoreMoments(0.3, 0.2),
            lexical_moments=ScoreMoments(2.0, 4.0),
        )
    }
    assert fused["a"] == pytest.approx(0.7 * 3.0 + 0.3 * 0.0)
    assert fused["b"] == pytest.approx(0.7 * 1.0 + 0.3 * 2.5)
    assert fused["c"] == pytest.approx(0.7 * 1.0 + 0.3 * 1.5), "missing from dense: dense's lowest, b's 1.0"
    without = fuse(dense, lexical, alpha=0.7, normalization="corpus")
    assert without == fuse(dense, lexical, alpha=0.7, normalization="zscore"), "no moments: zscore"
    late = {
        h.key: h
        for h in fuse(
            dense,
            lexical[:1],
            alpha=0.7,
            normalization="corpus",
            lexical_beyond={"a": 2.0},
            dense_moments=ScoreMoments(0.3, 0.2),
            lexical_moments=ScoreMoments(2.0, 4.0),
        )
    }
    assert late["a"].fused_score == pytest.approx(fused["a"]), "a's true BM25 score, not BM25's floor"
    assert (late["a"].lexical_score, late["a"].lexical_rank) == (2.0, None), "scored, but not a BM25 candidate"


def test_bm25_moments_cover_every_entry_and_requested_entries_keep_their_true_score() -> None:
    ids = [f"c{i}" for i in range(len(CORPUS))]
    index = LexicalIndex.build(ids, ids, CORPUS, collection="x", k1=1.2, b=0.75)
    oracle = LuceneIdfOracle(tokenize(CORPUS, as_words=True), k1=1.2, b=0.75)
    query = "vector search with HNSW"
    expected = oracle.get_scores(tokenize([query], as_words=True)[0]) / (1.2 + 1)
    ranking = index.rank([query], limit=1, also=lambda: [["c3", "c0", "nope"]])[0]
    assert ranking.moments.mean == pytest.approx(expected.mean(), rel=1e-4)
    assert ranking.moments.std == pytest.approx(expected.std(), rel=1e-4)
    top = int(np.argmax(expected))
    assert [h.chunk_id for h in ranking.hits] == [f"c{top}"] and top != 3
    assert [(h.chunk_id, h.score) for h in ranking.beyond] == [
        (f"c{i}", pytest.approx(expected[i], rel=1e-4)) for i in (3, 0) if i != top
    ]
    assert ranking.beyond[0].score == 0.0, "c3 shares no term with the query: its true score is 0, not left out"


def test_vector_moments_give_each_querys_mean_and_spread_over_the_corpus() -> None:
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(500, 16)).astype(np.float32)
    moments = VectorMoments.from_batches([vectors[:200], vectors[200:450], vectors[450:]])
    queries = rng.normal(size=(3, 16)).astype(np.float32)
    for query, m in zip(queries, moments.score_moments(queries)):
        scores = vectors.astype(np.float64) @ query
        assert (m.mean, m.std) == (pytest.approx(scores.mean(), rel=1e-6), pytest.approx(scores.std(), rel=1e-6))
    with pytest.raises(ValueError, match="ingest documents first"):
        VectorMoments.from_batches([])


def test_documents_are_rejoined_from_overlapping_chunks(embedder) -> None:
    from rag_core.ingest.chunking import TokenChunker
    from rag_core.types import Document

    text = " ".join(CORPUS * 3)
    chunker = TokenChunker(embedder.tokenizer, chunk_size=24, chunk_overlap=6, max_seq_length=256)
    chunks = chunker.chunk(Document(doc_id="d", text=text))
    assert len(chunks) > 3
    rows = list(reversed(chunks))
    first, doc_ids, texts = documents_from_chunks([*rows, Chunk("solo", "e", 0, "alone")])
    assert (first, doc_ids) == ([chunks[0].chunk_id, "solo"], ["d", "e"])
    assert texts == [text, "alone"], "each overlap counted once, chunks put back in order"
