"""Permission-aware retrieval: every answer only from documents the caller may read, on Milvus Lite and the server.

The adversarial suite labels SciFact abstracts with 3 tenants x 4 groups by a seeded hash, and has principals of
every tenant and group ask for other tenants' and groups' documents by their titles (phrases no other document
has), in every mode, at chunk and document level, with and without their own filter, reranked, and asked again
from the cache: no result may come from a document the principal cannot read, and a full top-k must come back
wherever enough readable documents exist.
"""

import hashlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import pytest

from rag_core.config import RAGConfig
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.direct import ingest_documents
from rag_core.models.rerank import Reranker
from rag_core.retrieval.engine import RetrievalEngine
from rag_core.security.principals import FilterError, check_whole_expression, reads
from rag_core.security.rbac import Identity, Role
from tests.support.configs import make_config
from tests.support.corpus import scifact_documents

TENANTS = ("acme", "globex", "initech")
GROUPS = ("hr", "legal", "eng", "sales")
DOCUMENTS = 90
QUERIES = 40  # titles asked by every principal: most belong to documents it cannot read
TOP_K = 5
MODES = ("hybrid", "dense", "bm25")


def labels_of(doc_id: str) -> tuple[tuple[str, ...], str]:
    """A seeded hash gives each document a tenant and one or two groups."""
    digest = hashlib.sha256(f"access-suite:{doc_id}".encode()).digest()
    groups = {GROUPS[digest[1] % 4]} | ({GROUPS[digest[2] % 4]} if digest[3] % 2 else set())
    return tuple(sorted(groups)), TENANTS[digest[0] % 3]


def principals() -> list[Identity]:
    readers = [
        Identity(name=f"{tenant}-{group}", role=Role.READER, groups=frozenset({group}), tenant=tenant)
        for tenant, group in itertools.product(TENANTS, GROUPS)
    ]
    pairs = [
        Identity(name=f"{tenant}-hr-legal", role=Role.OPERATOR, groups=frozenset({"hr", "legal"}), tenant=tenant)
        for tenant in TENANTS
    ]
    admins = [Identity(name=f"{tenant}-admin", role=Role.ADMIN, tenant=tenant) for tenant in TENANTS]
    return readers + pairs + admins


@dataclass
class SeenByReranker(Reranker):
    """Reorders by text length and remembers every text it was shown: it must only ever see readable ones."""

    texts: set[str] = field(default_factory=set)

    def scores(self, query: str, texts: list[str]) -> list[float]:
        self.texts.update(texts)
        return [float(len(t)) for t in texts]


@dataclass(frozen=True)
class LabelledCorpus:
    config: RAGConfig
    labels: dict[str, tuple[tuple[str, ...], str]]
    titles: dict[str, str]
    texts: dict[str, str]


@pytest.fixture(scope="module", params=["lite", pytest.param("server", marks=pytest.mark.server)])
def labelled_corpus(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, embedder
) -> Iterator[LabelledCorpus]:
    """Built once per backend for the module's tests, which only read it."""
    tmp = tmp_path_factory.mktemp("access")
    uri = str(tmp / "milvus.db") if request.param == "lite" else request.getfixturevalue("milvus_server").uri
    config = make_config(
        tmp,
        uri,
        f"access_{request.param}",
        milvus={"consistency_level": "Strong"},
        retrieval={"bm25_refresh_s": 0, "cache_size": 100_000},
        pipeline={"top_k": TOP_K, "rerank_top_k": TOP_K},
    )
    documents = scifact_documents(DOCUMENTS)
    labels = {d.doc_id: labels_of(d.doc_id) for d in documents}
    labelled = [replace(d, groups=labels[d.doc_id][0], tenant=labels[d.doc_id][1]) for d in documents]
    ingest_documents(labelled, RagContext(config, embedder=embedder), source="scifact")
    yield LabelledCorpus(config, labels, {d.doc_id: d.title for d in documents}, {d.doc_id: d.text for d in documents})
    if request.param == "server":  # the session's server: leave it as it was
        client = RagContext(config).manager.client
        client.drop_alias(config.milvus.collection)
        client.drop_collection(f"{config.milvus.collection}__v1")


def test_no_principal_ever_retrieves_a_document_it_cannot_read(labelled_corpus: LabelledCorpus, embedder) -> None:
    corpus = labelled_corpus
    reranker = SeenByReranker()
    engine = RetrievalEngine(
        corpus.config, embedder=embedder, manager=RagContext(corpus.config).manager, reranker=reranker
    )
    asked = list(corpus.titles)[:: DOCUMENTS // QUERIES][:QUERIES]
    queries = [corpus.titles[doc_id] for doc_id in asked]
    total = leaks = short = 0
    with embedder.reusing_query_vectors():
        for principal in principals():
            readable = {d for d, (groups, tenant) in corpus.labels.items() if reads(principal, groups, tenant)}
            assert readable and len(readable) < DOCUMENTS, "every principal reads some documents, none reads all"
            reranker.texts.clear()
            for mode, document_level, own_filter, repeat in itertools.product(
                MODES, (False, True), ("", "position >= 0"), range(2)
            ):
                if own_filter and (document_level or repeat):
                    continue  # the caller's own filter: once per mode
                options = engine.options(mode=mode, document_level=document_level, filter=own_filter)
                results = engine.search_many(queries, options, principal=principal)
                total += len(results)
                for doc_id, result in zip(asked, results):
                    assert result.cached == bool(repeat), "the second round comes from the principal's own cache"
                    leaks += sum(r.doc_id not in readable for r in result.results)
                    if mode != "bm25":  # BM25 finds only documents sharing a word: it may rightly find fewer
                        short += len(result.results) < TOP_K
                    if doc_id in readable and mode != "dense":
                        assert doc_id in {r.doc_id for r in result.results}, "its own title finds a readable document"
            readable_texts = [corpus.texts[d] for d in readable]
            assert reranker.texts and all(any(t in r for r in readable_texts) for t in reranker.texts)
    assert total >= 10_000, total
    assert leaks == 0, f"{leaks} results outside the principal's access in {total} queries"
    assert short == 0, f"{short} dense or hybrid answers short of the top {TOP_K}"


@pytest.mark.parametrize(
    "widening",
    [
        'doc_id != "x") or (doc_id != "x"',
        "true) or (true",
        'doc_id != "x" or (tenant != ""',
        'doc_id == "a\\") or (true',
        "doc_id == 'x",
    ],
)
def test_a_filter_that_could_reach_outside_its_parentheses_is_refused(widening: str) -> None:
    with pytest.raises(FilterError):
        check_whole_expression(widening)


def test_a_widening_filter_gets_an_error_never_more_documents(labelled_corpus: LabelledCorpus, embedder) -> None:
    corpus = labelled_corpus
    engine = RetrievalEngine(corpus.config, embedder=embedder, manager=RagContext(corpus.config).manager)
    reader = principals()[0]
    for attack in ('doc_id != "x") or (doc_id != "x"', "true) or (true"):
        with pytest.raises(FilterError, match="closes a parenthesis"):
            engine.search("cancer", filter=attack, principal=reader)
    # A whole expression is ANDed: naming another tenant only narrows, to nothing.
    other = next(t for t in TENANTS if t != reader.tenant)
    found = engine.search("cancer", filter=f'tenant == "{other}" or tenant == "{reader.tenant}"', principal=reader)
    assert found.results and all(corpus.labels[r.doc_id][1] == reader.tenant for r in found.results)
    assert not engine.search("cancer", filter=f'tenant == "{other}"', principal=reader).results
