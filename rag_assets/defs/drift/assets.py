"""The weekly drift report: queries, results, stored vectors and the model now against the snapshot taken at the
last promotion. Its metadata is what ``reindex_sensor`` reads (``drift_detected``) and the UI plots."""

import time

import dagster as dg

from rag_assets.resources import RetrievalEngineResource
from rag_core.quality.drift import NoSnapshotError, detect_drift


@dg.asset(
    group_name="operations",
    kinds={"milvus"},
    description="Drift of the queries logged since the last promotion, of the probe queries' results, of the "
    "stored vectors and of the embedding model, against the snapshot taken at that promotion; "
    "drift_magnitude in [0, 1] (the guide alerts above 0.15).",
)
def drift_report(context: dg.AssetExecutionContext, retrieval: RetrievalEngineResource) -> dg.MaterializeResult:
    started = time.perf_counter()
    try:
        report = detect_drift(retrieval.rag_config(), engine=retrieval.engine())
    except NoSnapshotError as error:
        raise dg.Failure(str(error)) from None
    context.log.info(
        f"drift {'detected' if report.drift_detected else 'not detected'} on {report.collection}: "
        f"magnitude {report.drift_magnitude:.3f}"
    )
    rows = [
        f"| {s.name} | {s.value:.4f} | {s.threshold:g} | {'yes' if s.detected else 'no'} | {s.detail} |"
        for s in report.signals
    ]
    return dg.MaterializeResult(
        metadata={
            "drift_detected": report.drift_detected,
            "drift_magnitude": float(report.drift_magnitude),
            **{f"signal_{s.name}": float(s.value) for s in report.signals},
            "signals": dg.MetadataValue.md(
                "\n".join(["| signal | value | threshold | detected | detail |", "|---|---|---|---|---|", *rows])
            ),
            "recommendations": dg.MetadataValue.md("\n".join(f"- {r}" for r in report.recommendations) or "none"),
            **({"probe_set_ndcg": report.probe_set_ndcg} if report.probe_set_ndcg is not None else {}),
            "probe_set": report.probe_set_note or "scored",
            "low_confidence": report.low_confidence,
            "sample_size": report.sample_size,
            "seconds": round(time.perf_counter() - started, 3),
            "collection": report.collection,
            "snapshot_of": report.snapshot_of,
            "snapshot_taken_at": report.snapshot_taken_at,
        }
    )
