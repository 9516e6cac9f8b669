"""The Grafana dashboard imports cleanly (one Prometheus data source variable used by every panel), every panel's
PromQL parses (promtool, as recording rules), and it shows what the issue asks for. Its queries run against a real
Prometheus in tests/integration/test_prometheus_scrape.py."""

import re
from pathlib import Path

import yaml

from tests.deploy.test_alert_rules import promtool
from tests.support.grafana_dashboard import load_dashboard, panel_queries, panels

# Metrics the dashboard must show: serving, quality, drift, index, resources, batch runs.
SHOWN = (
    "rag_query_duration_seconds_bucket",
    "rag_queries_total",
    "rag_http_requests_total",
    "rag_query_cache_hits_total",
    "rag_queries_within_sla_total",
    "rag_query_sla_seconds",
    "rag_hallucination_risk",
    "rag_faithfulness_score",
    "rag_answer_faithfulness_score",
    "rag_drift_magnitude",
    "rag_drift_probe_ndcg",
    "rag_index_rows",
    "rag_index_version",
    "rag_process_cpu_seconds_total",
    "rag_process_resident_memory_bytes",
    "rag_batch_success",
    "rag_batch_last_success_timestamp_seconds",
    "rag_batch_duration_seconds",
    "rag_ingestion_documents",
    "rag_ingestion_chunks",
    "rag_ingestion_tokens",
    "rag_compaction_purged_rows",
    "rag_retention_deleted_records",
    "up",
)


def test_the_dashboard_is_importable_with_a_prometheus_datasource_variable() -> None:
    dashboard = load_dashboard()
    (variable,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    reference = {"type": "prometheus", "uid": f"${{{variable['name']}}}"}
    shown = [p for p in panels(dashboard) if p["type"] != "row"]
    ids = [p["id"] for p in panels(dashboard)]
    assert dashboard["uid"] and dashboard["title"] and len(set(ids)) == len(ids)
    for panel in shown:
        assert panel["datasource"] == reference, panel["title"]
        assert panel["targets"] and all(t["datasource"] == reference for t in panel["targets"]), panel["title"]
        assert panel["description"], f"{panel['title']}: say what the panel shows"
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]


def test_every_panel_query_parses(tmp_path: Path) -> None:
    queries = panel_queries(load_dashboard())
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"dashboard:query_{i}", "expr": q.expr} for i, q in enumerate(queries)],
            }
        ]
    }
    (tmp_path / "dashboard.rules.yml").write_text(yaml.safe_dump(rules))
    result = promtool("check", "rules", "dashboard.rules.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_shows_what_operators_watch() -> None:
    dashboard = load_dashboard()
    queries = panel_queries(dashboard)
    used = {name for q in queries for name in re.findall(r"[a-z_:]+(?=[{\[)\s])", q.expr + " ")}
    assert not [m for m in SHOWN if not any(u.startswith(m) for u in used)], "metrics missing from the dashboard"
    by_title = {p["title"]: p for p in panels(dashboard)}
    heatmap = next(p for p in by_title.values() if p["type"] == "heatmap")
    assert heatmap["targets"][0]["format"] == "heatmap" and 'stage="retrieval"' in heatmap["targets"][0]["expr"]
    quantiles = {
        float(q)
        for q in re.findall(r"histogram_quantile\((0\.\d+), sum by \(le, stage\)", " ".join(q.expr for q in queries))
    }
    assert quantiles == {0.5, 0.95, 0.99}, "per-stage p50, p95 and p99"

    def threshold(title: str) -> float:
        steps = by_title[title]["fieldConfig"]["defaults"]["thresholds"]["steps"]
        return next(s["value"] for s in steps if s["value"] is not None)

    assert threshold("Drift magnitude") == 0.15 and threshold("Per-stage latency p50 / p95 / p99") == 0.1
    assert threshold("Hallucination risk") == 0.2 and threshold("Faithfulness score") == 0.7
    assert threshold("Error ratio") == 0.05
