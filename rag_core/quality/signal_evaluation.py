"""How well ``hallucination_risk`` tells failed queries on a labelled set, and the per-query lines ``rag eval``
writes (``--signals-out``). A query fails when no relevant document is in its top ``FAILURE_DEPTH``, the event
the model was fitted to predict."""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rag_core.quality.auroc import auroc_interval
from rag_core.quality.bootstrap import Interval
from rag_core.quality.evaluation import Run

FAILURE_DEPTH = 5


def failed_queries(run: Run, qrels: Mapping[str, Mapping[str, int]], depth: int = FAILURE_DEPTH) -> dict[str, bool]:
    """Per judged query: True when none of its top ``depth`` documents is relevant."""
    return {q: not any(judged.get(d, 0) > 0 for d, _ in run.get(q, [])[:depth]) for q, judged in qrels.items()}


@dataclass(frozen=True)
class SignalReport:
    signals: dict[str, dict[str, float]]  # per query id: hallucination_risk, faithfulness_score, components
    failed: dict[str, bool]
    auroc: Interval | None  # of hallucination_risk for failure; None when every query failed, or none did

    def as_json(self) -> dict:
        return {
            "failure": f"no relevant document in the top {FAILURE_DEPTH}",
            "queries": len(self.failed),
            "failed": sum(self.failed.values()),
            "hallucination_risk_auroc": self.auroc.as_json(4) if self.auroc else None,
        }

    def describe(self) -> str:
        if self.auroc is None:
            return (
                f"hallucination_risk AUROC: not defined ({sum(self.failed.values())} of {len(self.failed)} "
                f"queries without a relevant document in the top {FAILURE_DEPTH}; it needs both kinds)"
            )
        a = self.auroc
        return (
            f"hallucination_risk AUROC {a.mean:.3f} (95% CI {a.low:.3f}-{a.high:.3f}) for no relevant document "
            f"in the top {FAILURE_DEPTH}: {sum(self.failed.values())} of {len(self.failed)} queries"
        )


def signal_report(
    signals: Mapping[str, Mapping[str, float]], run: Run, qrels: Mapping[str, Mapping[str, int]]
) -> SignalReport:
    failed = failed_queries(run, qrels)
    ids = [q for q in failed if q in signals]
    labels = [failed[q] for q in ids]
    both = any(labels) and not all(labels)
    interval = auroc_interval(labels, [signals[q]["hallucination_risk"] for q in ids]) if both else None
    return SignalReport({q: dict(signals[q]) for q in ids}, {q: failed[q] for q in ids}, interval)


def write_signal_lines(path: Path, signals: Mapping[str, Mapping[str, float]]) -> None:
    """One JSON object per line: ``qid``, then the query's signals and components."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for qid, values in signals.items():
            out.write(json.dumps({"qid": qid, **values}) + "\n")
