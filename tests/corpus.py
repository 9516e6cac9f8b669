"""Small corpora written by the tests themselves."""

from pathlib import Path

TOPICS = {
    "milvus.md": ("Milvus", "Milvus stores vectors in collections. An HNSW index makes search fast. "
                  "Segments are compacted to purge deleted rows."),
    "dagster.md": ("Dagster", "Dagster models data as software-defined assets. Sensors watch for new files. "
                   "Schedules run jobs at fixed times."),
    "bm25.txt": (None, "BM25 ranks documents by term frequency and inverse document frequency. "
                 "It is a strong lexical baseline for retrieval."),
    "chunking.md": ("Chunking", "Chunks must fit the embedding model. Overlap keeps context across chunk borders. "
                    "Sentence boundaries make chunks easier to read."),
}


def paragraphs(topic: str, count: int) -> str:
    return "\n\n".join(f"Paragraph {i} about {topic}. " + f"{topic} detail number {i} is described here. " * 6
                       for i in range(count))


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
