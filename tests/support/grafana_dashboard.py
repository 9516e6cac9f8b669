"""The queries of deploy/grafana/rag-pipeline.json as Grafana would send them, for tests without a Grafana server."""

import json
from dataclasses import dataclass
from typing import Any

from tests.support.paths import REPO

DASHBOARD = REPO / "deploy" / "grafana" / "rag-pipeline.json"
# Grafana's built-in interval variables, given one concrete range (scrapes every second make 30 s plenty).
INTERVALS = ("$__rate_interval", "$__interval", "$__range")


@dataclass(frozen=True)
class PanelQuery:
    panel: str
    ref_id: str
    expr: str  # with the interval variables substituted


def load_dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows' collapsed children included."""
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def panel_queries(dashboard: dict[str, Any], *, interval: str = "30s") -> list[PanelQuery]:
    queries = []
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable in INTERVALS:
                expr = expr.replace(variable, interval)
            if "$" in expr:
                raise ValueError(
                    f"panel {panel['title']!r} ({target['refId']}) uses a variable the tests do not "
                    f"substitute: {target['expr']}"
                )
            queries.append(PanelQuery(panel["title"], target["refId"], expr))
    return queries
