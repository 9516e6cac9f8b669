"""Probe sets built from the corpus (issue 19): queries derived from the corpus's own chunks, their documents the
known answers; stored per version, read by `rag eval`, used by the re-index gate, cleaned by an erasure."""

import json
import logging
from pathlib import Path

import pytest
import yaml

from rag_core.cli.main import main
from rag_core.config import RAGConfig
from rag_core.lifecycle.compliance_manager import ComplianceManager
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.direct import ingest_documents
from rag_core.lifecycle.reindex import build_candidate, gate_candidate
from rag_core.quality.drift import detect_drift
from rag_core.quality.drift_snapshot import DriftSnapshot, snapshot_path
from rag_core.quality.probes import (
    MASKED,
    MIN_PROBES,
    WORD,
    ProbeSet,
    ProbeSetError,
    build_probe_set,
    probe_set_path,
)
from rag_core.types import Document
from tests.support.configs import make_config
from tests.support.corpus import scifact_documents as scifact_abstracts
from tests.support.engines import engine_for

DOCUMENTS = 80  # SciFact abstracts: enough for a probe set (MIN_PROBES) and a judgement, small enough to embed fast


def scifact_documents(count: int = DOCUMENTS) -> list[Document]:
    return scifact_abstracts(count)


def rows_of(documents: list[Document], source: str = "s") -> list[dict]:
    return [{"chunk_id": f"{d.doc_id}#0", "doc_id": d.doc_id, "source": source, "text": d.text} for d in documents]


def probes_config(tmp_path: Path, probe_set_size: int = 60) -> RAGConfig:
    return make_config(
        tmp_path,
        str(tmp_path / "milvus.db"),
        milvus={"consistency_level": "Strong"},
        retrieval={"bm25_refresh_s": 0},
        quality_gate={"probe_set_size": probe_set_size},
    )


def test_probes_are_seeded_stratified_and_never_verbatim() -> None:
    documents = scifact_documents(200)
    rows = rows_of(documents[:150], "big") + rows_of(documents[150:], "small")
    first = build_probe_set(rows, collection="c__v1", data_version=3, n=40)
    assert first == build_probe_set(rows, collection="c__v1", data_version=3, n=40), "the same seed, the same set"
    assert first.probes != build_probe_set(rows, collection="c__v1", data_version=3, n=40, seed=1).probes
    by_source = {s: sum(p.source == s for p in first.probes) for s in ("big", "small")}
    assert by_source == {"big": 30, "small": 10}, "each source in proportion to its chunks"
    assert len({p.doc_id for p in first.probes}) == 40, "one probe per document while documents last"
    texts = {r["chunk_id"]: r["text"] for r in rows}
    for probe in first.probes:
        chunk = " ".join(texts[probe.chunk_id].split()).lower()
        assert probe.query.lower() not in chunk
        assert set(probe.query.split()) <= set(WORD.findall(texts[probe.chunk_id])), "the chunk's own words"


def test_the_rarest_words_of_the_salient_sentence_are_left_out() -> None:
    """A verbatim match on the words only this document has would make every probe trivial for BM25."""
    rows = [
        {
            "chunk_id": f"d{i}#0",
            "doc_id": f"d{i}",
            "source": "s",
            "text": f"Kinase{i} regulates chronic inflammation through cytokine{i} signalling pathways in adult "
            f"patients. Short one.",
        }
        for i in range(40)
    ]
    probe_set = build_probe_set(rows, collection="c__v1", data_version=1, n=MIN_PROBES)
    assert MASKED == 2 and len(probe_set.probes) == MIN_PROBES
    for probe in probe_set.probes:
        index = probe.doc_id[1:]
        assert f"Kinase{index}" not in probe.query and f"cytokine{index}" not in probe.query
        assert "inflammation" in probe.query and "Short" not in probe.query, "the salient sentence, not the other"


def test_a_corpus_too_small_for_a_probe_set_says_so_with_its_numbers() -> None:
    rows = rows_of(scifact_documents(10))
    with pytest.raises(ProbeSetError, match=r"c__v1 gives only \d+ probes from 10 chunks.*at least 30"):
        build_probe_set(rows, collection="c__v1", data_version=1, n=200)
    with pytest.raises(ProbeSetError, match="needs at least 1 probe"):
        build_probe_set(rows, collection="c__v1", data_version=1, n=0)


def test_a_stored_probe_set_round_trips_and_a_broken_one_is_named(tmp_path: Path) -> None:
    probe_set = build_probe_set(rows_of(scifact_documents(60)), collection="c__v2", data_version=5, n=MIN_PROBES)
    folder = probe_set.write(tmp_path / "probes")
    assert ProbeSet.read(folder) == probe_set
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nbroken\n", encoding="utf-8")
    with pytest.raises(ProbeSetError, match=r"probe_set.json or its queries/qrels are unreadable.*rag probes build"):
        ProbeSet.read(folder)
    with pytest.raises(ProbeSetError, match="is not a probe set: probe_set.json is missing"):
        ProbeSet.read(tmp_path)


def test_a_promotion_builds_the_probe_set_and_rag_eval_scores_it(
    tmp_path: Path, embedder, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    config = probes_config(tmp_path)
    ingest_documents(scifact_documents(), RagContext(config, embedder=embedder))
    folder = probe_set_path(config, "semantic_index__v1")
    assert len(ProbeSet.read(folder).probes) == 60, "the promotion built the version's own"
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config.model_dump(mode="json")))

    assert main(["--config", str(config_file), "eval", "--dataset", str(folder), "--json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["queries"] == 60 and 0.5 < report["ndcg@10"] <= 1.0

    assert main(["--config", str(config_file), "probes", "build", "--n", "45"]) == 0
    assert "probe set of semantic_index__v1: 45 probes" in capsys.readouterr().out
    assert len(ProbeSet.read(folder).probes) == 45

    context = RagContext(config, embedder=embedder)
    ingest_documents(scifact_documents()[:70], context, prune=True)  # same settings: v1 changes in place
    stale = ProbeSet.read(folder)
    stale_folder = tmp_path / "stale"
    ProbeSet(collection="semantic_index__v0", data_version=0, probes=stale.probes, sampled=stale.sampled).write(
        stale_folder
    )
    with caplog.at_level(logging.WARNING):
        assert main(["--config", str(config_file), "eval", "--dataset", str(stale_folder), "-q"]) == 0
    assert "was built from semantic_index__v0" in caplog.text and "now serves semantic_index__v1" in caplog.text


def test_an_erasure_takes_the_documents_probes_out_of_every_probe_set(tmp_path: Path, embedder) -> None:
    config = probes_config(tmp_path)
    ingest_documents(scifact_documents(), RagContext(config, embedder=embedder))
    folder = probe_set_path(config, "semantic_index__v1")
    victim = ProbeSet.read(folder).probes[0]
    report = ComplianceManager(config).erase_document(victim.doc_id)
    assert report.probe_sets == 1
    assert victim.doc_id not in {p.doc_id for p in ProbeSet.read(folder).probes}
    assert victim.query not in (folder / "queries.jsonl").read_text(encoding="utf-8")


def test_without_a_labelled_set_the_gate_judges_on_the_probe_set(
    tmp_path: Path, embedder, perturbed_model: str
) -> None:
    config = probes_config(tmp_path)
    context = RagContext(config, embedder=embedder)
    ingest_documents(scifact_documents(), context)

    equal = gate_candidate(context, build_candidate(context).collection)
    assert equal.passed and equal.metric == "ndcg@10" and equal.queries == 60
    assert equal.candidate_value == pytest.approx(equal.serving_value, abs=0.01), "an unchanged rebuild answers alike"
    assert "probe set built from semantic_index__v1" in equal.evidence

    noisy = RagContext(
        config.model_copy(update={"embedding": config.embedding.model_copy(update={"model": perturbed_model})})
    )
    worse = gate_candidate(noisy, build_candidate(noisy).collection)
    assert not worse.passed and worse.candidate_value < worse.serving_value - config.quality_gate.max_ndcg_drop


def test_drift_tells_when_the_corpus_no_longer_answers_its_own_probes(tmp_path: Path, embedder) -> None:
    config = probes_config(tmp_path)
    context = RagContext(config, embedder=embedder)
    documents = scifact_documents()
    ingest_documents(documents, context)
    snapshot = DriftSnapshot.load(snapshot_path(config, "semantic_index__v1"))
    assert len(snapshot.probe_set_ndcg) == 60, "the promotion's snapshot scored the probe set built just before it"
    assert not any(
        p.query in (snapshot_path(config, "semantic_index__v1")).read_bytes().decode("latin-1")
        for p in ProbeSet.read(probe_set_path(config, "semantic_index__v1")).probes
    ), "scores, no text"

    unchanged = detect_drift(config, engine=engine_for(config, embedder=embedder))
    signal = {s.name: s for s in unchanged.signals}["probe_ndcg_drop"]
    assert not signal.detected and signal.value <= 0.0 + 1e-9 and unchanged.probe_set_note == ""
    assert unchanged.probe_set_ndcg == pytest.approx(sum(snapshot.probe_set_ndcg.values()) / 60)

    # A quarter of the documents deleted: their probes are left out, the rest still find theirs.
    ingest_documents(documents[:60], context, prune=True)
    pruned = detect_drift(config, engine=engine_for(config, embedder=embedder))
    signal = {s.name: s for s in pruned.signals}["probe_ndcg_drop"]
    assert not signal.detected and "left out, their documents deleted or erased since" in signal.detail

    # The same ids, each now holding another document's text (a broken parser or source mapping): the answers
    # moved away from the questions, and drift says so with what to do.
    shuffled = [
        Document(doc_id=d.doc_id, text=other.text, title=other.title)
        for d, other in zip(documents[:60], documents[1:60] + documents[:1], strict=True)
    ]
    ingest_documents(shuffled, context, prune=True)
    report = detect_drift(config, engine=engine_for(config, embedder=embedder))
    signal = {s.name: s for s in report.signals}["probe_ndcg_drop"]
    assert signal.detected and signal.value > 0.5 and report.drift_detected and report.drift_magnitude > 0.15
    assert report.probe_set_ndcg < 0.3 and any(r.startswith("Check answer quality") for r in report.recommendations)
    assert json.loads(json.dumps(report.as_json()))["probe_set_ndcg"] == round(report.probe_set_ndcg, 4)


def test_drift_without_a_scored_probe_set_says_why(tmp_path: Path, embedder) -> None:
    config = probes_config(tmp_path, probe_set_size=0)
    ingest_documents(scifact_documents(40), RagContext(config, embedder=embedder))
    report = detect_drift(config, engine=engine_for(config, embedder=embedder))
    assert report.probe_set_ndcg is None and "probe_ndcg_drop" not in {s.name for s in report.signals}
    assert "scored no probe set" in report.probe_set_note and "rag drift --snapshot" in report.probe_set_note


def test_the_drift_runs_probe_set_ndcg_is_pushed_only_when_scored() -> None:
    from rag_assets.defs.observability.sensors import JOB_GAUGES

    report = {"collection": "semantic_index__v3", "drift_magnitude": 0.02, "drift_detected": False}
    scored = JOB_GAUGES["drift_report_job"]({"drift_report": report | {"probe_set_ndcg": 0.93}})
    assert scored.per_collection["rag_drift_probe_ndcg"] == {"semantic_index": 0.93}
    unscored = JOB_GAUGES["drift_report_job"]({"drift_report": report})
    assert "rag_drift_probe_ndcg" not in unscored.per_collection, "no probe set: no value, never a false 0"
