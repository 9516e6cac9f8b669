"""Index maintenance: the guide's weekly compaction, as a job a schedule (or a person) launches."""

import dagster as dg

from rag_assets.resources import MilvusResource
from rag_core.index.compaction import compact_versions


@dg.op(
    out=dg.Out(dg.Nothing),
    description="Compacts every complete version behind the alias and records, per "
    "version, segments and deleted rows before and after, and the time taken.",
)
def compact_index(context: dg.OpExecutionContext, milvus: MilvusResource) -> dg.Output:
    reports = compact_versions(milvus.manager(), milvus.collection)
    rows = [
        f"| `{r.collection}` | {r.state} | {_segments(r.before.segments)} → {_segments(r.after.segments)} | "
        f"{r.before.deleted_rows} → {r.after.deleted_rows} | {r.seconds:.1f} |"
        for r in reports
    ]
    notes = sorted({r.note for r in reports if r.note})
    context.log.info(f"compacted {len(reports)} versions of {milvus.collection}")
    return dg.Output(
        None,
        metadata={
            "versions": len(reports),
            "deleted_rows_before": sum(r.before.deleted_rows for r in reports),
            "deleted_rows_after": sum(r.after.deleted_rows for r in reports),
            "seconds": round(sum(r.seconds for r in reports), 3),
            "report": dg.MetadataValue.md(
                "\n".join(
                    [
                        "| version | state | segments | deleted rows | seconds |",
                        "|---|---|---|---|---|",
                        *rows,
                        "",
                        *notes,
                    ]
                )
            ),
        },
    )


def _segments(count: int | None) -> str:
    return "n/a" if count is None else str(count)


@dg.job(
    description="Merge segments and purge deleted rows in every complete version (the guide's weekly "
    "operation); scheduled by compaction_schedule."
)
def compaction() -> None:
    compact_index()
