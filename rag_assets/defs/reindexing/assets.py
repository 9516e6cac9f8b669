"""Quality-gated re-indexing: build ``NAME__vN+1`` from the whole corpus, let the blocking ``quality_gate`` check
judge it, then move the alias. Not downstream of ``semantic_index`` on purpose: the ingestion job must never start
a full rebuild."""

import dagster as dg

from rag_assets.resources import SettingsResource
from rag_core.lifecycle.promotion import promote_candidate
from rag_core.lifecycle.reindex import build_candidate, pending_candidate


@dg.asset(
    group_name="reindexing",
    kinds={"milvus"},
    description="A new version of the alias, built from every document it serves with the current model, "
    "chunking and index settings, complete but not served until the quality gate passes.",
)
def reindex_candidate(settings: SettingsResource) -> dg.MaterializeResult:
    context = settings.context()
    manager = context.manager
    build = build_candidate(context)
    return dg.MaterializeResult(
        metadata={
            "candidate": build.collection,
            "serving": manager.resolve(build.alias) or "",
            "rows": build.rows,
            "embedded": build.upserted,
            "index_version": build.index_version,
            "seconds": build.seconds,
        }
    )


@dg.asset(
    group_name="reindexing",
    deps=[reindex_candidate],
    kinds={"milvus"},
    description="Moves the alias to the gated candidate in one step (readers never see a gap), keeps the "
    "last index.keep_versions complete versions for rollback, and takes the drift snapshot.",
)
def serving_version(settings: SettingsResource) -> dg.MaterializeResult:
    context = settings.context()
    manager, alias = context.manager, context.alias()
    promotion = promote_candidate(context, pending_candidate(manager, alias), alias=alias)
    return dg.MaterializeResult(
        metadata={
            "serving": promotion.serving,
            "previous": promotion.previous or "",
            "rows": manager.count(promotion.serving),
            "dropped": dg.MetadataValue.md("\n".join(f"- `{v}`" for v in promotion.dropped) or "none"),
            "versions": dg.MetadataValue.md("\n".join(f"- `{v}`" for v in manager.versions(alias))),
        }
    )
