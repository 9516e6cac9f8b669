"""Where access labels come from (sidecar, source, defaults), what happens to bad ones, re-labelling without
re-embedding, versions from before labels, and the audit of who retrieved what."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rag_core.config import RAGConfig
from rag_core.index.sync import finish_version
from rag_core.lifecycle.compliance_manager import ComplianceManager
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.direct import ingest_documents
from rag_core.lifecycle.reindex import reindex
from rag_core.security.rbac import Identity, Role
from rag_core.types import GROUPS_FIELD, TENANT_FIELD, Document
from tests.support.configs import make_config
from tests.support.corpus import write_corpus
from tests.support.dagster_runs import run_ingestion


def labels_by_document(config: RAGConfig) -> dict[str, tuple[tuple[str, ...], str]]:
    manager = RagContext(config).manager
    collection = manager.resolve(config.milvus.collection)
    return {
        row["doc_id"]: (tuple(row[GROUPS_FIELD]), row[TENANT_FIELD])
        for batch in manager.iter_rows(collection, ["doc_id", GROUPS_FIELD, TENANT_FIELD])
        for row in batch
    }


def reader(groups: set[str], tenant: str) -> Identity:
    return Identity(name="r", role=Role.READER, groups=frozenset(groups), tenant=tenant)


def test_a_sidecar_wins_over_the_source_which_wins_over_the_defaults_and_relabelling_embeds_nothing(
    tmp_path: Path, embedder
) -> None:
    write_corpus(tmp_path / "docs")
    docs = tmp_path / "docs"
    (docs / "milvus.md.access.json").write_text(json.dumps({"groups": ["hr"]}), encoding="utf-8")
    (docs / "dagster.md.access.json").write_text(json.dumps({"groups": ["legal"]}), encoding="utf-8")
    (docs / "gone.md.access.json").write_text("{}", encoding="utf-8")
    config = make_config(tmp_path, str(tmp_path / "milvus.db"), ingestion={"groups": ["eng"], "tenant": "acme"})
    run_ingestion(config)
    assert labels_by_document(config)["dagster.md"] == (("legal",), "acme")

    (docs / "dagster.md.access.json").write_text(json.dumps({"groups": "hr"}), encoding="utf-8")
    first = run_ingestion(config)
    skipped = str(first.metadata["raw_documents"]["skipped"])
    assert "dagster.md: dagster.md.access.json: groups must be a list of strings, got 'hr'" in skipped
    assert "gone.md.access.json: access sidecar of no document" in skipped
    labels = labels_by_document(config)
    assert labels["dagster.md"] == (("legal",), "acme"), "a bad sidecar skips its document: its rows stay as they were"
    assert labels["milvus.md"] == (("hr",), "acme"), "the sidecar's groups, the source's tenant"
    assert labels["bm25.txt"] == (("eng",), "acme"), "the source's labels"

    (docs / "milvus.md.access.json").write_text(json.dumps({"groups": ["legal", "hr"]}), encoding="utf-8")
    relabelled = run_ingestion(config)
    assert relabelled.metadata["embeddings"]["embedded_chunks"] == 0, "new labels, same text: nothing embedded"
    assert relabelled.metadata["semantic_index"]["upserted"] >= 1
    assert labels_by_document(config)["milvus.md"] == (("hr", "legal"), "acme")
    assert all(relabelled.checks.values())

    unlabelled = make_config(tmp_path / "plain", str(tmp_path / "plain.db"))
    write_corpus(tmp_path / "plain" / "docs")
    run_ingestion(unlabelled)
    assert set(labels_by_document(unlabelled).values()) == {(("everyone",), "default")}, "no labels: the defaults"


class CountingEmbedder:
    """The session's model, counting the documents it embeds."""

    def __init__(self, embedder) -> None:  # noqa: ANN001 - an Embedder
        self.inner, self.embedded = embedder, 0

    def __getattr__(self, name: str):  # noqa: ANN204 - the model's own attributes
        return getattr(self.inner, name)

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        self.embedded += len(texts)
        return self.inner.encode_documents(texts)


def test_the_api_relabels_without_embedding_and_skips_only_the_document_with_bad_labels(
    tmp_path: Path, embedder
) -> None:
    config = make_config(
        tmp_path, str(tmp_path / "milvus.db"), retrieval={"bm25_refresh_s": 0}, access={"groups": ["hr", "legal"]}
    )
    counting = CountingEmbedder(embedder)
    context = RagContext(config, embedder=counting)
    documents = [
        Document("pay", "Salary bands and payroll dates for every employee."),
        Document("contract", "The supplier contract renews each January."),
    ]
    ingest_documents(documents, context, groups=["hr"], tenant="acme")
    first = counting.embedded
    hr, legal = reader({"hr"}, "acme"), reader({"legal"}, "acme")
    engine = context.engine()
    assert {r.doc_id for r in engine.search("payroll salary", principal=hr).results} == {"pay", "contract"}
    assert not engine.search("payroll salary", principal=legal).results

    bad = [
        Document("pay", documents[0].text, groups=("legal",)),
        Document("contract", documents[1].text, groups=(7,)),  # type: ignore[arg-type] - a caller's bad value
        Document("memo", "A memo for the finance group.", groups=("finance",)),
    ]
    report = ingest_documents(bad, context, groups=["hr"], tenant="acme")
    assert counting.embedded == first, "re-labelling reads the stored vectors back; nothing is embedded"
    assert any("document 'contract'" in s and "7" in s for s in report.skipped), report.skipped
    assert any("document 'memo'" in s and "unknown group 'finance'" in s for s in report.skipped), report.skipped
    context.invalidate()
    assert [r.doc_id for r in engine.search("payroll salary", principal=legal, document_level=True).results] == ["pay"]
    assert {r.doc_id for r in engine.search("contract renews", principal=hr).results} == {"contract"}, (
        "a document whose new labels were refused keeps its old ones"
    )


def test_a_version_from_before_labels_is_the_default_tenants_until_reindexed(tmp_path: Path, embedder) -> None:
    config = make_config(tmp_path, str(tmp_path / "milvus.db"), retrieval={"bm25_refresh_s": 0})
    context = RagContext(config, embedder=embedder)
    manager, alias = context.manager, config.milvus.collection
    version = replace(manager.version_for(embedder.model_name, embedder.dimension, "c"), schema=2)
    collection = manager.create_version(alias, version)
    text = "Old rows carry no labels at all."
    manager.upsert(
        collection,
        [
            {
                "chunk_id": "old-0",
                "doc_id": "old",
                "source": "api",
                "position": 0,
                "text": text,
                "metadata": {"title": ""},
                GROUPS_FIELD: ["anything"],  # dropped: the collection has no such field
                TENANT_FIELD: "anything",
                "vector": embedder.encode_documents([text])[0].tolist(),
            }
        ],
    )
    manager.flush(collection)
    finish_version(manager, alias, collection, {"old-0"})
    engine = context.engine()
    assert [r.doc_id for r in engine.search("old rows labels", principal=reader({"everyone"}, "default")).results]
    assert not engine.search("old rows labels", principal=reader({"everyone"}, "acme")).results
    assert not engine.search("old rows labels", principal=reader({"hr"}, "default")).results

    rebuilt = reindex(context)
    context.invalidate()
    assert manager.state(rebuilt.collection).version.labelled
    assert labels_by_document(config) == {"old": (("everyone",), "default")}
    assert [r.doc_id for r in engine.search("old rows labels", principal=reader({"everyone"}, "default")).results]


def test_the_audit_trail_says_who_retrieved_a_document_and_when(tmp_path: Path, embedder) -> None:
    config = make_config(tmp_path, str(tmp_path / "milvus.db"), retrieval={"bm25_refresh_s": 0})
    context = RagContext(config, embedder=embedder)
    ingest_documents([Document("pay", "Payroll dates."), Document("menu", "Lunch menu.")], context, groups=["hr"])
    import asyncio

    from rag_core.api import AdvancedRAGPipeline

    pipeline = AdvancedRAGPipeline(context=context)
    asyncio.run(pipeline.retrieve("payroll dates", top_k=1))
    asyncio.run(pipeline.retrieve("lunch menu", top_k=1))
    compliance = ComplianceManager(context=context)
    found = compliance.query_audit_logs(event_type="retrieval", document="pay", start_time="2000-01-01")
    assert len(found) == 1 and found[0].details["result_ids"] == ["pay"]
    assert found[0].actor.endswith("@api")
    assert "payroll" not in json.dumps([dict(r.details) for r in compliance.query_audit_logs()]).lower()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"security": {"tokens": [{"name": "a", "role": "reader", "token_sha256": "0" * 64, "groups": []}]}},
            "at least 1",
        ),
        (
            {"security": {"tokens": [{"name": "a", "role": "reader", "token_sha256": "0" * 64, "all_tenants": True}]}},
            "all_tenants is for admins only",
        ),
        (
            {
                "access": {"groups": ["hr"]},
                "security": {"tokens": [{"name": "a", "role": "reader", "token_sha256": "0" * 64, "groups": ["hx"]}]},
            },
            "unknown groups ['hx']",
        ),
        (
            {"security": {"tokens": [{"name": "a", "role": "reader", "token_sha256": "0" * 64, "tenant": "a b"}]}},
            "pattern",
        ),
    ],
)
def test_a_token_that_would_read_nothing_or_too_much_is_a_config_error(settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        RAGConfig.model_validate(settings)
