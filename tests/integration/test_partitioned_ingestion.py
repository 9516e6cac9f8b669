"""Partitioned ingestion (ingestion.partitions): N bucket runs build what one run builds, and each touches only its
bucket, so N workers can ingest in parallel against one Milvus."""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
from pydantic import ValidationError

from rag_assets.definitions import build_definitions
from rag_core.config import ConfigError, RAGConfig, load_config
from rag_core.index.manager import MilvusIndexManager
from rag_core.ingest.partitioning import Partition, bucket_of
from tests.support.configs import make_config
from tests.support.corpus import write_corpus
from tests.support.dagster_runs import run_ingestion

SMALL_CHUNKS = {"chunk_size": 48, "chunk_overlap": 8}
KEYS = ["0-of-4", "1-of-4", "2-of-4", "3-of-4"]
# write_corpus's five files fall in buckets 0 and 3 of 4; these fill buckets 1 and 2 (cosine.md alone in 1).
EXTRA = {
    "cosine.md": "Normalised vectors make cosine similarity equal to the inner product of two vectors.",
    "hnsw.md": "HNSW builds a layered proximity graph; the ef parameter trades accuracy for speed.",
}


def corpus(folder: Path) -> dict[str, Path]:
    files = write_corpus(folder)
    for name, text in EXTRA.items():
        files[name] = folder / name
        files[name].write_text(text + "\n", encoding="utf-8")
    return files


def config_for(tmp_path: Path, docs: Path, name: str, partitions: int, uri: str = "") -> RAGConfig:
    """Its own Parquet tables and collection (by default its own Milvus Lite file), over the shared corpus folder."""
    return make_config(
        tmp_path / name,
        uri or str(tmp_path / name / "milvus.db"),
        f"t_{name}",
        chunking=SMALL_CHUNKS,
        milvus={"consistency_level": "Strong"},
        ingestion={"docs_dir": str(docs), "partitions": partitions},
    )


def run_partitions(config: RAGConfig, keys: list[str], *, parallel: bool = False) -> list[dict]:
    """Each partition's run, in turn as a backfill on one worker would launch them, or all at once as on N
    workers; the semantic_index metadata of each, after asserting that every check passed."""
    job = build_definitions(config).resolve_job_def("ingestion")

    def run(key: str) -> dict:
        # Disposed in the thread that made it: the instance's event log is an in-memory SQLite database.
        with dg.DagsterInstance.ephemeral() as instance:
            result = job.execute_in_process(partition_key=key, instance=instance)
            evaluations = result.get_asset_check_evaluations()
            assert len(evaluations) == 4 and all(e.passed for e in evaluations), key
            (index,) = result.asset_materializations_for_node("semantic_index")
            return {k: v.value for k, v in index.metadata.items()}

    if not parallel:
        return [run(key) for key in keys]
    with ThreadPoolExecutor(len(keys)) as pool:
        return list(pool.map(run, keys))


def rows(config: RAGConfig) -> dict[str, tuple[str, np.ndarray]]:
    """chunk_id -> (doc_id, vector) of everything the alias serves."""
    manager = MilvusIndexManager(config.milvus, config.index)
    try:
        collection = manager.resolve(config.milvus.collection)
        return {
            r["chunk_id"]: (r["doc_id"], np.asarray(r["vector"], dtype=np.float32))
            for batch in manager.iter_rows(collection, ["chunk_id", "doc_id", "vector"])
            for r in batch
        }
    finally:
        manager.close()


@pytest.mark.slow
def test_four_partitions_one_by_one_build_exactly_the_collection_one_run_builds(tmp_path: Path, embedder) -> None:
    docs = tmp_path / "docs"
    corpus(docs)
    whole = config_for(tmp_path, docs, "whole", 1)
    run_ingestion(whole)
    split = config_for(tmp_path, docs, "split", 4)

    reports = run_partitions(split, KEYS)

    # The version is filled bucket by bucket and served only once the last bucket is in it.
    assert [r["serving"] for r in reports] == [False, False, False, True]
    assert {r["collection"] for r in reports} == {"t_split__v1"}
    expected, built = rows(whole), rows(split)
    assert sorted(built) == sorted(expected) and len(built) >= 10
    for chunk_id, (doc_id, vector) in expected.items():
        assert built[chunk_id][0] == doc_id
        assert np.allclose(built[chunk_id][1], vector, atol=1e-5), chunk_id
    assert {bucket_of(doc_id, 4) for doc_id, _ in built.values()} == {0, 1, 2, 3}

    again = run_partitions(split, KEYS)
    assert all(r["upserted"] == r["deleted"] == 0 and r["serving"] for r in again), "an unchanged bucket is a no-op"


@pytest.mark.slow
def test_a_deletion_resynced_in_its_partition_touches_no_other_bucket(tmp_path: Path, embedder) -> None:
    docs = tmp_path / "docs"
    files = corpus(docs)
    config = config_for(tmp_path, docs, "split", 4)
    run_partitions(config, KEYS)
    before = rows(config)
    assert bucket_of("bm25.txt", 4) == 0 and bucket_of("cosine.md", 4) == 1

    files["bm25.txt"].unlink()
    (report,) = run_partitions(config, ["0-of-4"])
    files["cosine.md"].unlink()  # the only document of bucket 1: the bucket becomes empty, which is no error
    (emptied,) = run_partitions(config, ["1-of-4"])

    after = rows(config)
    gone = {c for c, (d, _) in before.items() if d in {"bm25.txt", "cosine.md"}}
    assert gone and report["deleted"] + emptied["deleted"] == len(gone) and report["upserted"] == 0
    assert set(after) == set(before) - gone
    for chunk_id in after:
        assert np.array_equal(after[chunk_id][1], before[chunk_id][1]) and after[chunk_id][0] == before[chunk_id][0]
    assert report["data_version"] != emptied["data_version"]


@pytest.mark.server
@pytest.mark.slow
def test_partitions_run_in_parallel_against_one_server(tmp_path: Path, milvus_server, embedder) -> None:
    docs = tmp_path / "docs"
    files = corpus(docs)
    split = config_for(tmp_path, docs, f"split{tmp_path.name[-6:]}", 4, milvus_server.uri)
    run_partitions(split, KEYS)
    before = run_partitions(split, KEYS, parallel=True)
    assert all(r["upserted"] == r["deleted"] == 0 for r in before)

    files["bm25.txt"].unlink()  # bucket 0
    files["milvus.md"].write_text("# Milvus\n\nMilvus keeps vectors in collections behind an alias.\n")  # bucket 3
    files["hnsw.md"].write_text("HNSW trades recall for speed with ef.\n")  # bucket 2
    (docs / "rerank.md").write_text("A cross-encoder reads the query and the passage together.\n")  # bucket 1
    reports = run_partitions(split, KEYS, parallel=True)

    assert all(r["upserted"] + r["deleted"] > 0 for r in reports), "every bucket had a change to sync"
    assert len({r["data_version"] for r in reports}) == 4, "racing bumps never write the same data version"
    whole = config_for(tmp_path, docs, f"whole{tmp_path.name[-6:]}", 1, milvus_server.uri)
    run_ingestion(whole)
    expected, built = rows(whole), rows(split)
    assert sorted(built) == sorted(expected)
    assert all(np.allclose(built[c][1], v, atol=1e-5) and built[c][0] == d for c, (d, v) in expected.items())


def test_the_bucket_of_a_document_is_fixed_and_buckets_are_balanced() -> None:
    # Computed once with blake2b; a change here re-buckets every corpus already ingested in partitions.
    assert [bucket_of(doc_id, 4) for doc_id in ("milvus.md", "dagster.md", "cosine.md", "hnsw.md")] == [3, 0, 1, 2]
    assert bucket_of("scifact/4983", 16) == 13
    counts = Counter(bucket_of(f"doc-{i}", 8) for i in range(8000))
    assert sorted(counts) == list(range(8)) and all(900 <= n <= 1100 for n in counts.values()), counts
    assert Partition.from_key("2-of-4") == Partition(2, 4) and Partition(2, 4).key == "2-of-4"
    assert [p.owns("hnsw.md") for p in Partition.all(4)] == [False, False, True, False]
    with pytest.raises(ValueError, match="'K-of-N'"):
        Partition.from_key("2/4")


@pytest.mark.parametrize("partitions", [0, -2])
def test_partitions_below_one_are_refused_naming_the_setting(partitions: int, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"ingestion\.partitions"):
        RAGConfig.model_validate({"ingestion": {"partitions": partitions}})
    config_file = tmp_path / "config.yaml"
    config_file.write_text("ingestion:\n  docs_dir: docs\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"ingestion\.partitions"):
        load_config(config_file, environ={"RAG__INGESTION__PARTITIONS": str(partitions)})


def test_the_code_location_splits_the_chain_and_the_sensor_asks_for_every_partition(tmp_path: Path) -> None:
    config = make_config(tmp_path, str(tmp_path / "milvus.db"), ingestion={"partitions": 4})
    definitions = build_definitions(config)
    dg.Definitions.validate_loadable(definitions)
    job = definitions.resolve_job_def("ingestion")
    assert job.partitions_def.get_partition_keys() == KEYS
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == {
        "raw_documents",
        "chunks",
        "embeddings",
        "semantic_index",
    }
    graph = definitions.resolve_asset_graph()
    assert graph.get(dg.AssetKey("bm25_index")).parent_keys == {dg.AssetKey("semantic_index")}
    write_corpus(Path(config.ingestion.docs_dir))
    sensor = definitions.resolve_sensor_def("raw_documents_sensor")
    with dg.build_sensor_context(resources={"corpus": definitions.resources["corpus"]}) as context:
        requests = sensor(context).run_requests
    assert [r.partition_key for r in requests] == KEYS and len({r.run_key for r in requests}) == 4
