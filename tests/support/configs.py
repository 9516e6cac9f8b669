"""The configuration every test starts from: everything under the test's own folder, never the checkout's data/."""

from pathlib import Path

from rag_core.config import RAGConfig


def make_config(tmp_path: Path, uri: str, collection: str = "semantic_index", **sections: dict) -> RAGConfig:
    base = {
        "milvus": {"uri": uri, "collection": collection, "retry_attempts": 2, "retry_backoff_s": 0.05},
        "ingestion": {
            "docs_dir": str(tmp_path / "docs"),
            "storage_dir": str(tmp_path / "assets"),
            "record_batch_size": 64,
        },
        # Never the working directory's data/: tests leave nothing behind in the checkout.
        "retrieval": {"bm25_dir": str(tmp_path / "bm25"), "metrics_dir": str(tmp_path / "metrics")},
        "quality": {"query_log_dir": str(tmp_path / "query_log"), "drift_dir": str(tmp_path / "drift")},
        "compliance": {
            "database_url": f"sqlite:///{tmp_path / 'audit.db'}",
            "reports_dir": str(tmp_path / "compliance_reports"),
        },
    }
    for name, values in sections.items():
        base[name] = {**base.get(name, {}), **values}
    return RAGConfig.model_validate(base)


def secured_config(tmp_path: Path, tokens: dict[str, str]) -> RAGConfig:
    """RBAC on: one identity per role, named after it, holding ``tokens[role]`` (only its hash is configured)."""
    from rag_core.security.rbac import hash_token

    entries = [{"name": role, "role": role, "token_sha256": hash_token(token)} for role, token in tokens.items()]
    return make_config(tmp_path, str(tmp_path / "milvus.db"), security={"tokens": entries})
