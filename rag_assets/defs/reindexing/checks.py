"""The quality gate between a re-indexed candidate and the alias move."""

import dagster as dg

from rag_assets.defs.reindexing.assets import reindex_candidate
from rag_assets.resources import SettingsResource
from rag_core.lifecycle.reindex import gate_candidate, pending_candidate


@dg.asset_check(
    asset=reindex_candidate,
    blocking=True,
    description="nDCG@10 on quality_gate.dataset may not drop more than quality_gate.max_ndcg_drop below "
    "the serving version (without a dataset: the same on the serving version's probe set, built from its own "
    "documents, judged by a paired bootstrap; a corpus too small for one: the probe queries' mean "
    "hallucination_risk may not rise more than quality_gate.max_risk_rise). Its metadata names the evidence used. "
    "Blocking: a failure leaves the alias "
    "where it was and the candidate for inspection.",
)
def quality_gate(settings: SettingsResource) -> dg.AssetCheckResult:
    context = settings.context()
    result = gate_candidate(context, pending_candidate(context.manager, context.alias()))
    return dg.AssetCheckResult(
        passed=result.passed,
        description=result.message,
        metadata={
            "metric": result.metric,
            "serving": result.serving,
            "candidate": result.candidate,
            "serving_value": result.serving_value,
            "candidate_value": result.candidate_value,
            "allowed": result.allowed,
            "queries": result.queries,
            "evidence": result.evidence,
        },
    )
