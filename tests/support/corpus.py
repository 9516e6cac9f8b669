"""Small corpora written by the tests themselves, and SciFact abstracts read from the shared data."""

import gzip
import itertools
import json
from pathlib import Path

from rag_core.config import RAGConfig
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.direct import ingest_documents
from rag_core.types import Document
from tests.support.paths import SCIFACT

TOPICS = {
    "milvus.md": (
        "Milvus",
        "Milvus stores vectors in collections. An HNSW index makes search fast. "
        "Segments are compacted to purge deleted rows.",
    ),
    "dagster.md": (
        "Dagster",
        "Dagster models data as software-defined assets. Sensors watch for new files. "
        "Schedules run jobs at fixed times.",
    ),
    "bm25.txt": (
        None,
        "BM25 ranks documents by term frequency and inverse document frequency. "
        "It is a strong lexical baseline for retrieval.",
    ),
    "chunking.md": (
        "Chunking",
        "Chunks must fit the embedding model. Overlap keeps context across chunk borders. "
        "Sentence boundaries make chunks easier to read.",
    ),
}


def paragraphs(topic: str, count: int) -> str:
    return "\n\n".join(
        f"Paragraph {i} about {topic}. " + f"{topic} detail number {i} is described here. " * 6 for i in range(count)
    )


def write_corpus(folder: Path) -> dict[str, Path]:
    """Four short documents and one long, multi-chunk one; returns the files by name."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, (title, text) in TOPICS.items():
        files[name] = folder / name
        files[name].write_text(f"# {title}\n\n{text}\n" if title else text + "\n", encoding="utf-8")
    files["long.md"] = folder / "long.md"
    files["long.md"].write_text("# Operations\n\n" + paragraphs("operations", 8) + "\n", encoding="utf-8")
    return files


RETRIEVAL_DOCS = {
    "compaction": "Compaction merges small segments and purges deleted rows from Milvus collections.",
    "hnsw": "HNSW builds a layered proximity graph; the ef parameter trades search accuracy for speed.",
    "sensor": "A Dagster sensor watches a folder and requests an ingestion run when files are added.",
    "bm25": "BM25 scores a document by term frequency, inverse document frequency and document length.",
    "rerank": "A cross-encoder reranker reads the query and the passage together to score relevance.",
    "alias": "An alias points readers at the current collection version; moving it swaps indexes at once.",
    "cosine": "Normalised vectors make cosine similarity equal to the inner product.",
    "retention": "Retention policies delete audit records older than the configured number of days.",
}


def ingest(config: RAGConfig, docs: dict[str, str], embedder) -> None:
    ingest_documents(
        [Document(doc_id=k, text=v, title=k) for k, v in docs.items()], RagContext(config, embedder=embedder)
    )


def scifact_documents(count: int) -> list[Document]:
    """The first ``count`` SciFact abstracts, with their titles."""
    with gzip.open(SCIFACT / "corpus.jsonl.gz", "rt", encoding="utf-8") as lines:
        records = [json.loads(line) for line in itertools.islice(lines, count)]
    return [Document(doc_id=r["_id"], text=r["text"], title=r["title"]) for r in records]
