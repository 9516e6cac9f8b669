"""Serving a newly built version, the same way on every path that promotes: an ingest whose settings changed, a
re-index, and their Dagster assets. The alias moves in one step, ``index.keep_versions`` is applied, and the drift
reference snapshot is taken of what now serves (drift is measured against the serving version's own snapshot, so a
rollback finds the one taken when that version was promoted). Before the move the version gets its probe set
(which the snapshot then scores) and, with ``pipeline.hybrid_alpha: auto``, its fusion weight."""

import shutil
from collections.abc import Callable

from rag_core.index.retention import Promotion, promote
from rag_core.lifecycle.context import RagContext
from rag_core.quality.drift_snapshot import snapshot_on_promotion, snapshot_path
from rag_core.quality.fusion_choice import fusion_on_promotion
from rag_core.quality.probes import probe_set_path, probes_on_promotion


def promote_candidate(context: RagContext, candidate: str, *, alias: str) -> Promotion:
    config, manager = context.config, context.manager
    # Before the alias moves, so the version serves from its first query with the fusion weight chosen for it
    probes_on_promotion(config, manager)(candidate)
    fusion_on_promotion(config, manager, context.embedder, candidate)
    promotion = promote(manager, alias, candidate, config.index.keep_versions)
    for dropped in promotion.dropped:  # its references must not outlive its rows (an erasure looks only at versions)
        snapshot_path(config, dropped).unlink(missing_ok=True)
        shutil.rmtree(probe_set_path(config, dropped), ignore_errors=True)
    snapshot_on_promotion(config, alias, context.embedder, manager)(candidate)
    return promotion


def promoter(context: RagContext, alias: str) -> Callable[[str], Promotion]:
    """``promote_candidate`` for ``sync_index``, which promotes the version it has just completed."""
    return lambda candidate: promote_candidate(context, candidate, alias=alias)
