"""The guide's monthly performance analysis as a monthly-partitioned asset: the query log of one calendar month as
plottable metadata, tables, Markdown and a PNG chart under ``quality.reports_dir``/performance/."""

import datetime
from pathlib import Path

import dagster as dg

from rag_assets.resources import SettingsResource
from rag_core.observability.performance import PerformanceReport, performance_report
from rag_core.observability.performance_chart import write_chart

# end_offset=1: the current month too, so far (a report can be asked for before the month ends).
MONTHS = dg.MonthlyPartitionsDefinition(start_date="2026-01-01", end_offset=1)
DRIFT_REPORT = dg.AssetKey("drift_report")
LATENCY_COLUMNS = ("p50", "p95", "p99")


@dg.asset(
    name="performance_report",
    group_name="operations",
    partitions_def=MONTHS,
    kinds={"parquet"},
    description="One calendar month of the query log: p50/p95/p99 per stage per day, SLA compliance, cache "
    "hit rate, quality-signal and drift trends, the slowest queries, and a PNG chart.",
)
def performance_report_asset(context: dg.AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    config = settings.rag_config()
    window = context.partition_time_window
    first, last = window.start.date(), (window.end - datetime.timedelta(days=1)).date()
    report = performance_report(
        Path(config.quality.query_log_dir),
        period="monthly",
        start=first,
        today=last,
        target_latency_ms=config.pipeline.target_latency_ms,
    )
    metadata: dict[str, object] = {
        "queries": report.queries,
        "month": f"{first:%Y-%m}",
        "drift": dg.MetadataValue.md(_drift_trend(context.instance, window)),
    }
    if not report.queries:
        return dg.MaterializeResult(
            metadata=metadata | {"note": f"no queries logged under {config.quality.query_log_dir} in {first:%Y-%m}"}
        )
    chart = write_chart(report, Path(config.quality.reports_dir) / "performance" / f"{first:%Y-%m}.png")
    total = report.latency_ms["retrieval"]
    return dg.MaterializeResult(
        metadata=metadata
        | {
            "sla_compliance": report.sla_compliance,
            "cache_hit_rate": report.cache_hit_rate,
            **{f"retrieval_{q}_ms": float(getattr(total, q)) for q in LATENCY_COLUMNS},
            "latency_by_day": _latency_table(report),
            "days": dg.MetadataValue.md(_days_markdown(report)),
            "slowest": dg.MetadataValue.md(
                "\n".join(
                    [
                        "| time | query id | retrieval ms |",
                        "|---|---|---|",
                        *(f"| {q.time} | `{q.query_id}` | {q.retrieval_ms:.1f} |" for q in report.slowest),
                    ]
                )
            ),
            "chart": dg.MetadataValue.path(str(chart)),
        }
    )


def _latency_table(report: PerformanceReport) -> dg.TableMetadataValue:
    columns = [
        dg.TableColumn("day", "string"),
        dg.TableColumn("stage", "string"),
        dg.TableColumn("count", "int"),
        *(dg.TableColumn(f"{q}_ms", "float") for q in LATENCY_COLUMNS),
    ]
    records = [
        dg.TableRecord(
            {
                "day": day.day,
                "stage": stage,
                "count": stats.count,
                **{f"{q}_ms": float(getattr(stats, q)) for q in LATENCY_COLUMNS},
            }
        )
        for day in report.days
        for stage, stats in sorted(day.latency_ms.items())
    ]
    return dg.MetadataValue.table(records, schema=dg.TableSchema(columns=columns))


def _days_markdown(report: PerformanceReport) -> str:
    signals = sorted({name for day in report.days for name in day.signals})
    rows = [
        f"| {d.day} | {d.queries} | {d.latency_ms['retrieval'].p95:.1f} | {d.sla_compliance:.1%} | "
        f"{d.cache_hit_rate:.1%} | " + " | ".join(f"{d.signals.get(s, float('nan')):.3f}" for s in signals) + " |"
        for d in report.days
    ]
    header = "| day | queries | p95 ms | SLA | cache hits | " + " | ".join(signals) + " |"
    return "\n".join([header, "|" + "---|" * (5 + len(signals)), *rows])


def _drift_trend(instance: dg.DagsterInstance, window: dg.TimeWindow) -> str:
    """The month's drift reports, from the drift_report asset's materializations."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=DRIFT_REPORT, after_timestamp=window.start.timestamp(), before_timestamp=window.end.timestamp()
        ),
        limit=100,
        ascending=True,
    ).records
    rows = []
    for record in records:
        values = record.asset_materialization.metadata
        magnitude, detected = values.get("drift_magnitude"), values.get("drift_detected")
        when = datetime.datetime.fromtimestamp(record.timestamp, datetime.UTC).strftime("%Y-%m-%d %H:%M")
        rows.append(f"| {when} | {magnitude.value if magnitude else '?'} | {detected.value if detected else '?'} |")
    if not rows:
        return "no drift_report materialized this month"
    return "\n".join(["| time (UTC) | drift magnitude | drift detected |", "|---|---|---|", *rows])
