"""The monthly performance report as a PNG: retrieval p50/p95/p99 per day against the SLA, and queries, cache hit
rate and SLA compliance per day. Rendered with matplotlib's Agg backend: no display needed on a server."""

from pathlib import Path

from rag_core.observability.performance import PerformanceReport


def write_chart(report: PerformanceReport, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    days = [d.day[5:] for d in report.days]
    figure, (latency, volume) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for quantile in ("p50", "p95", "p99"):
        latency.plot(
            days,
            [getattr(d.latency_ms["retrieval"], quantile) for d in report.days],
            marker="o",
            label=f"retrieval {quantile}",
        )
    latency.axhline(report.target_latency_ms, color="red", linestyle="--", label=f"SLA {report.target_latency_ms:g} ms")
    latency.set_ylabel("ms")
    latency.set_title(f"Retrieval latency, {report.start} to {report.end} ({report.queries} queries)")
    latency.legend()
    volume.bar(days, [d.queries for d in report.days], color="lightgray", label="queries")
    volume.set_ylabel("queries")
    rates = volume.twinx()
    rates.plot(days, [d.cache_hit_rate for d in report.days], color="green", marker="o", label="cache hit rate")
    rates.plot(days, [d.sla_compliance for d in report.days], color="red", marker="o", label="SLA compliance")
    rates.set_ylim(0, 1.05)
    rates.legend(loc="upper right")
    volume.tick_params(axis="x", rotation=60)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
