"""ONNX Runtime (float32 and int8) against torch on the same SciFact chunks and queries, side by side in one run.

    python -m benchmarks.onnx_backend   # needs the index `rag eval` builds; writes benchmarks/out/onnx_backend.json

1. Documents: every chunk of the SciFact collection encoded by torch fp32, by ONNX Runtime float32 and by its int8
   copy (``embedding.precision: int8``); the lowest cosine between two encoders' vectors of a chunk, and tokens per
   second for each (the same texts, the same batch size).
2. Queries: the 300 test queries one at a time, p50/p95 per query: plain sentence-transformers (torch fp32), the
   project's torch encoder, the ONNX float32 encoder and the int8 one.
   Then tokens per second by batch size for each, on the first SWEEP_CHUNKS chunks (what chose the default), and
   the profile that bounds the ratio: the model's floating-point work per token, what each backend achieves
   against this machine's measured fp32 matrix-multiply peak (torch sgemm, 2048 x 2048), and ONNX Runtime's time
   by operator.
3. Quality: SciFact test nDCG@10 through the engine with each backend encoding the queries (the index holds the
   torch vectors, which match the ONNX ones to the cosine in 1.). int8 vectors are another model's: int8 gets an
   index of its own, built by the same ``rag eval`` path in a temporary data folder, and is scored in hybrid (the
   default) and dense mode beside the float32 index; ranking agreement = the share of each query's top 10 documents
   the two runs have in common, against the same figure for torch and ONNX float32 (the parity bound).
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.offline import SCIFACT
from benchmarks.report import OUT, write_report
from rag_core.config import EmbeddingConfig, RAGConfig, load_config
from rag_core.index.manager import MilvusIndexManager
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.evaluate import evaluate_dataset
from rag_core.models.embedder import Embedder
from rag_core.quality.evaluation import Run, dataset_alias, evaluate, evaluation_options, load_beir
from tests.support.engines import engine_for

SWEEP_CHUNKS, SWEEP_BATCH_SIZES = 1500, (16, 32, 64)


def timed(encode, texts: list[str]) -> tuple[np.ndarray, float]:  # noqa: ANN001
    started = time.perf_counter()
    vectors = encode(texts)
    return vectors, time.perf_counter() - started


def per_query_ms(encode, queries: list[str]) -> dict[str, float]:  # noqa: ANN001
    for text in queries[:20]:
        encode([text])  # warm
    samples = []
    for text in queries:
        started = time.perf_counter()
        encode([text])
        samples.append((time.perf_counter() - started) * 1000)
    p50, p95 = np.percentile(samples, [50, 95])
    return {"p50": round(float(p50), 2), "p95": round(float(p95), 2)}


def sgemm_flops_per_s(size: int = 2048, repeats: int = 20) -> float:
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return repeats * 2 * size**3 / (time.perf_counter() - started)


def model_flops(embedder: Embedder, texts: list[str]) -> int:
    """Multiply-adds x 2 of a BERT encoder over these texts: per token and layer the four attention projections
    and the two feed-forward matrices, plus the attention scores and their weighted sum over the text's tokens."""
    settings = embedder.model[0].auto_model.config
    hidden, inner, layers = settings.hidden_size, settings.intermediate_size, settings.num_hidden_layers
    lengths = [
        len(ids) for ids in embedder.tokenizer(texts, truncation=True, max_length=embedder.max_seq_length)["input_ids"]
    ]
    return sum(2 * layers * n * (4 * hidden * hidden + 2 * hidden * inner + 2 * n * hidden) for n in lengths)


def onnx_time_by_operator(embedder: Embedder, texts: list[str]) -> dict[str, float]:
    import json

    import onnxruntime as ort

    encoder = embedder.onnx
    options = ort.SessionOptions()
    options.enable_profiling = True
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    serving, encoder.session = (
        encoder.session,
        ort.InferenceSession(str(encoder.folder / "model.onnx"), options, providers=["CPUExecutionProvider"]),
    )
    try:
        encoder.encode(texts, normalize=True)
        trace = Path(encoder.session.end_profiling())
    finally:
        encoder.session = serving
    spent: dict[str, float] = {}
    for event in json.loads(trace.read_text()):
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            spent[event["args"]["op_name"]] = spent.get(event["args"]["op_name"], 0) + event["dur"]
    trace.unlink()
    total = sum(spent.values())
    return {op: round(us / total, 3) for op, us in sorted(spent.items(), key=lambda kv: -kv[1]) if us / total >= 0.01}


def top_ten_agreement(first: Run, second: Run) -> dict[str, float]:
    """Share of each query's top 10 documents both runs return (mean and lowest), and the share of queries whose
    top 10 is the same list in the same order."""
    shared, same = [], 0
    for qid, ranking in first.items():
        a, b = [d for d, _ in ranking[:10]], [d for d, _ in second.get(qid, [])[:10]]
        shared.append(len(set(a) & set(b)) / max(len(a), 1))
        same += a == b
    return {
        "mean_top10_overlap": round(float(np.mean(shared)), 4),
        "lowest_top10_overlap": round(float(np.min(shared)), 2),
        "identical_top10_share": round(same / len(first), 4),
    }


def int8_quality(config: RAGConfig, dataset: Path) -> dict:
    """nDCG@10 of float32 (the configured index) and int8 (its own index, in a temporary data folder), hybrid and
    dense, with the cache off; and how far their rankings agree."""
    quiet = {"retrieval": config.retrieval.model_copy(update={"cache_size": 0})}
    result: dict = {}
    with tempfile.TemporaryDirectory(prefix="int8-index-") as folder:
        int8_config = RAGConfig.model_validate(
            {
                "data": {"dir": folder},
                "embedding": config.embedding.model_dump() | {"precision": "int8", "backend": "onnx"},
                "retrieval": {"cache_size": 0},
            }
        )
        contexts = {"float32": RagContext(config.model_copy(update=quiet)), "int8": RagContext(int8_config)}
        for mode in ("hybrid", "dense"):
            runs = {}
            for precision, context in contexts.items():
                report, runs[precision], _ = evaluate_dataset(context, dataset, mode=mode, latency_sample=0)
                result[f"{mode}_ndcg_at_10_{precision}"] = round(report.ndcg_at_10, 5)
            result[f"{mode}_ndcg_difference"] = round(
                result[f"{mode}_ndcg_at_10_int8"] - result[f"{mode}_ndcg_at_10_float32"], 5
            )
            result[f"{mode}_agreement"] = top_ten_agreement(runs["float32"], runs["int8"])
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, default=SCIFACT)
    parser.add_argument("--out", type=Path, default=OUT / "onnx_backend.json")
    args = parser.parse_args()
    config = load_config()
    alias = dataset_alias(args.dataset)
    manager = MilvusIndexManager(config.milvus, config.index)
    collection = manager.resolve(alias)
    texts = [row["text"] for batch in manager.iter_rows(collection, ["text"]) for row in batch]

    torch_side = Embedder(config.embedding.model_copy(update={"backend": "torch", "query_precision": "float32"}))
    onnx_side = Embedder(config.embedding.model_copy(update={"backend": "onnx", "precision": "float32"}))
    int8_side = Embedder(config.embedding.model_copy(update={"backend": "onnx", "precision": "int8"}))
    assert onnx_side.onnx is not None and int8_side.onnx.precision == "int8"
    tokens = sum(
        len(ids)
        for ids in torch_side.tokenizer(texts, truncation=True, max_length=torch_side.max_seq_length)["input_ids"]
    )
    torch_vectors, torch_s = timed(torch_side.encode_documents, texts)
    onnx_vectors, onnx_s = timed(onnx_side.encode_documents, texts)
    int8_vectors, int8_s = timed(int8_side.encode_documents, texts)
    cosines = np.sum(torch_vectors * onnx_vectors, axis=1)
    int8_cosines = np.sum(int8_vectors * onnx_vectors, axis=1)
    sample = texts[:SWEEP_CHUNKS]
    sample_tokens = sum(
        len(ids)
        for ids in torch_side.tokenizer(sample, truncation=True, max_length=torch_side.max_seq_length)["input_ids"]
    )
    sweep = []
    for batch_size in SWEEP_BATCH_SIZES:
        row = {"batch_size": batch_size}
        for name, side in (("torch", torch_side), ("onnx", onnx_side)):
            sized = Embedder(side.config.model_copy(update={"batch_size": batch_size}))
            row[f"{name}_tokens_per_s"] = round(sample_tokens / timed(sized.encode_documents, sample)[1])
        sweep.append(row)
    flops, peak = model_flops(torch_side, texts), sgemm_flops_per_s()
    profile = {
        "model_mflop_per_token": round(flops / tokens / 1e6, 1),
        "sgemm_gflop_per_s": round(peak / 1e9),
        **{
            f"{name}_share_of_sgemm_peak": round(flops / seconds / peak, 2)
            for name, seconds in (("torch", torch_s), ("onnx", onnx_s))
        },
        "onnx_time_by_operator": onnx_time_by_operator(onnx_side, texts[:256]),
    }

    test = load_beir(args.dataset, "test")
    queries = list(test.queries.values())
    plain = torch_side.model

    def plain_encode(batch: list[str]) -> np.ndarray:
        return plain.encode(batch, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)

    query_ms = {
        "sentence_transformers_fp32": per_query_ms(plain_encode, queries),
        "project_torch": per_query_ms(torch_side.encode_queries, queries),
        "project_onnx": per_query_ms(onnx_side.encode_queries, queries),
        "project_onnx_int8": per_query_ms(int8_side.encode_queries, queries),
    }

    ndcg, runs = {}, {}
    for name, embedder in (("torch", torch_side), ("onnx", onnx_side)):
        engine = engine_for(
            config.model_copy(update={"retrieval": config.retrieval.model_copy(update={"cache_size": 0})}),
            embedder=embedder,
            alias=alias,
        )
        report, runs[name] = evaluate(engine, test, evaluation_options(engine))
        ndcg[name] = round(report.ndcg_at_10, 5)
    int8 = int8_quality(config, args.dataset)

    report = {
        "dataset": args.dataset.name,
        "chunks": len(texts),
        "tokens": tokens,
        "documents": {
            "torch_tokens_per_s": round(tokens / torch_s),
            "onnx_tokens_per_s": round(tokens / onnx_s),
            "ratio": round(torch_s / onnx_s, 2),
            "goal_ratio": 1.5,
            "min_cosine": float(np.min(cosines)),
            "goal_min_cosine": 0.99999,
        },
        "int8": {
            "tokens_per_s": round(tokens / int8_s),
            "ratio_vs_onnx_float32": round(onnx_s / int8_s, 2),
            "ratio_vs_torch": round(torch_s / int8_s, 2),
            "goal_ratio_vs_onnx_float32": 2.0,
            "min_cosine_to_float32": round(float(np.min(int8_cosines)), 5),
            "p01_cosine_to_float32": round(float(np.percentile(int8_cosines, 1)), 5),
            "mean_cosine_to_float32": round(float(np.mean(int8_cosines)), 5),
            "query_p95_ratio_vs_onnx_float32": round(
                query_ms["project_onnx"]["p95"] / query_ms["project_onnx_int8"]["p95"], 2
            ),
            "goal_query_p95_ratio": 2.0,
            **int8,
            "goal_ndcg_difference": 0.005,
        },
        "profile": profile,
        "batch_size_sweep": {"chunks": len(sample), "tokens": sample_tokens, "runs": sweep},
        "query_encoding_ms": query_ms,
        "query_p95_ratio_vs_sentence_transformers": round(
            query_ms["sentence_transformers_fp32"]["p95"] / query_ms["project_onnx"]["p95"], 2
        ),
        "ndcg_at_10": ndcg,
        "torch_vs_onnx_agreement": top_ten_agreement(runs["torch"], runs["onnx"]),
        "settings": {
            "batch_size": config.embedding.batch_size,
            "model": config.embedding.model,
            "default": EmbeddingConfig().backend,
        },
    }
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
