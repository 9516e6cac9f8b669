"""On-demand queries: a job whose one op asks the retrieval engine and shows the ranked chunks in the run."""

import dagster as dg
from pydantic import Field

from rag_assets.resources import RetrievalEngineResource
from rag_core.actions import perform
from rag_core.api import result_depth
from rag_core.security.rbac import acting_as, local_identity, named_identity


class QueryConfig(dg.Config):
    query: str = Field(description="The question or keywords to search for.")
    top_k: int = 5
    mode: str = "hybrid"
    principal: str = Field(
        "",
        description="The security.tokens name whose documents the query may return (required once tokens are "
        "configured); empty: the local single-user principal.",
    )


@dg.op(out=dg.Out(dg.Nothing), description="Runs one hybrid query and shows the ranked chunks in the run.")
def answer_query(context: dg.OpExecutionContext, config: QueryConfig, retrieval: RetrievalEngineResource) -> dg.Output:
    settings, engine = retrieval.rag_config(), retrieval.engine()
    if settings.security.tokens and not config.principal:
        raise dg.Failure(
            "security.tokens is configured: set ops.answer_query.config.principal to the token name whose "
            "documents this query may return."
        )
    principal = named_identity(settings, config.principal) if config.principal else local_identity(settings)
    depth = result_depth(settings.pipeline, config.top_k)
    with acting_as(principal):
        result = perform(
            retrieval.context(),
            "query",
            lambda: engine.search(config.query, mode=config.mode, **depth, principal=principal),
            mode=config.mode,
        )
    engine.latency.save()
    rows = [
        f"| {i} | {c.fused_score:.3f} | `{c.doc_id}` | {' '.join(c.text.split())[:160].replace('|', '/')} |"
        for i, c in enumerate(result.results, 1)
    ]
    table = "\n".join(["| # | score | document | text |", "|---|---|---|---|", *rows])
    context.log.info(f"{len(rows)} results for {config.query!r} from {result.collection}")
    return dg.Output(
        None,
        metadata={
            "query": config.query,
            "results": dg.MetadataValue.md(table),
            "lexical_backend": result.lexical_backend,
            **{f"{k}_ms": round(v, 2) for k, v in result.timings_ms.items()},
        },
    )


@dg.job(description="On-demand query: set ops.answer_query.config.query in the launchpad.")
def query_job() -> None:
    answer_query()
