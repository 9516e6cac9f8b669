"""Turn a corpus directory or file into Documents, and say exactly which inputs were left out and why.

A corpus is messy: one empty, binary or half-downloaded file must not stop ingestion, and a user must be
told precisely what to fix. So every reader yields a ``SkippedInput`` instead of raising, and the walk
goes on to the next input.
"""

import gzip
import hashlib
import json
import os
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from bs4 import BeautifulSoup
from pypdf import PdfReader

from rag_core.types import Document, SkippedInput

SUPPORTED_SUFFIXES: tuple[str, ...] = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".jsonl", ".jsonl.gz")
DEFAULT_MAX_FILE_BYTES = 50 * 1024 * 1024

_JSONL_SUFFIXES = (".jsonl", ".jsonl.gz")
_JSONL_DOCUMENT_KEYS = ("_id", "title", "text")
# Tags that start a new paragraph: their text must not run into the text around them.
_HTML_BLOCK_TAGS = (
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption", "figure",
    "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p",
    "pre", "section", "table", "td", "th", "tr", "ul",
)  # fmt: skip
_HTML_INVISIBLE_TAGS = ("script", "style", "noscript", "template", "title")

# A located document: the line is where it sits in a JSONL file (None for one-document files),
# kept so a duplicate id can point at the exact place its first occurrence came from.
_Item = tuple[Document, int | None] | SkippedInput


@dataclass(frozen=True)
class LoadReport:
    documents: list[Document]
    skipped: list[SkippedInput]


def load_documents(path: Path, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> LoadReport:
    """Everything ``iter_inputs`` yields, split into what can be ingested and what the user must fix."""
    documents: list[Document] = []
    skipped: list[SkippedInput] = []
    for item in iter_inputs(path, max_file_bytes=max_file_bytes):
        (skipped if isinstance(item, SkippedInput) else documents).append(item)
    return LoadReport(documents=documents, skipped=skipped)


def iter_inputs(path: Path, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> Iterator[Document | SkippedInput]:
    """Stream documents so a large corpus never has to fit in memory; bad inputs come out as skip reports.

    ``max_file_bytes`` caps each file, except JSONL corpora, where it caps each line (one document).
    Raises ``FileNotFoundError`` if ``path`` does not exist: that is a configuration error, not a bad input.
    """
    first_seen: dict[str, str] = {}
    for doc_id, file in _corpus_files(Path(path)):
        for item in _read_file(file, doc_id, max_file_bytes):
            if isinstance(item, SkippedInput):
                yield item
                continue
            document, line = item
            if document.doc_id in first_seen:
                yield SkippedInput(
                    document.source,
                    f"duplicate document id {document.doc_id!r}, first seen at {first_seen[document.doc_id]}; "
                    "give each document a unique id",
                    line,
                )
                continue
            first_seen[document.doc_id] = _where(document.source, line)
            yield document


def corpus_fingerprint(path: Path) -> str:
    """Cheap change detector for a sensor: any file added, edited (size or mtime) or removed changes it.

    It covers exactly the files ``iter_inputs`` looks at (hidden ones excluded), without reading them.
    """
    digest = hashlib.sha256()
    for rel_path, file in _corpus_files(Path(path)):
        try:
            stat = file.stat()
        except FileNotFoundError:  # removed while we walked, or a dangling link: it is not part of the corpus
            continue
        digest.update(f"{rel_path}\x1f{stat.st_size}\x1f{stat.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _corpus_files(root: Path) -> list[tuple[str, Path]]:
    """(doc id, path) of every non-hidden file, sorted so ids and duplicate winners are the same on every run."""
    if root.is_file():
        return [(root.name, root)]
    if not root.is_dir():
        raise FileNotFoundError(f"corpus path {root} does not exist")
    files: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [name for name in dirnames if not name.startswith(".")]
        for name in filenames:
            if not name.startswith("."):
                file = Path(dirpath, name)
                files.append((file.relative_to(root).as_posix(), file))
    return sorted(files)


def _read_file(file: Path, doc_id: str, max_file_bytes: int) -> Iterator[_Item]:
    """A file that vanished or cannot be opened is one more bad input, not a reason to stop the walk."""
    try:
        yield from _dispatch(file, doc_id, max_file_bytes)
    except OSError as exc:
        yield SkippedInput(str(file), f"cannot read file ({exc.strerror or exc}); check that it exists and is readable")


def _dispatch(file: Path, doc_id: str, max_file_bytes: int) -> Iterator[_Item]:
    """Pick the reader by suffix; checks that hold for every format are done once, here."""
    source = str(file)
    suffix = _supported_suffix(file.name)
    if suffix is None:
        yield SkippedInput(source, f"unsupported file type; supported: {', '.join(SUPPORTED_SUFFIXES)}")
        return
    size = file.stat().st_size
    if size == 0:
        yield SkippedInput(source, "empty file; add text to it or remove it")
    elif suffix in _JSONL_SUFFIXES:
        yield from _read_jsonl(file, source, max_file_bytes)
    elif size > max_file_bytes:
        yield SkippedInput(
            source, f"file is {size:,} bytes, over the {max_file_bytes:,}-byte limit; split it or raise max_file_bytes"
        )
    elif suffix == ".pdf":
        yield _with_no_line(_read_pdf(file, doc_id, source))
    else:
        yield _with_no_line(_read_text_file(file, doc_id, source, _TEXT_PARSERS[suffix]))


def _supported_suffix(name: str) -> str | None:
    lowered = name.lower()
    return next((suffix for suffix in SUPPORTED_SUFFIXES if lowered.endswith(suffix)), None)


def _with_no_line(result: Document | SkippedInput) -> _Item:
    return result if isinstance(result, SkippedInput) else (result, None)


def _where(source: str, line: int | None) -> str:
    return source if line is None else f"{source}:{line}"


def _read_text_file(
    file: Path, doc_id: str, source: str, parse: Callable[[str, str], tuple[str, str]]
) -> Document | SkippedInput:
    """Decode strictly: guessing an encoding would silently index mojibake, so the user is told to re-save."""
    data = file.read_bytes()
    if b"\x00" in data:
        return SkippedInput(
            source, "contains NUL bytes, so it is binary (or UTF-16); save it as UTF-8 text or remove it"
        )
    try:
        raw = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        return SkippedInput(source, f"invalid UTF-8 at byte {exc.start}; re-save the file as UTF-8")
    if not raw.strip():
        return SkippedInput(source, "file contains only whitespace; add text to it or remove it")
    title, text = parse(raw, file.stem)
    if not text:
        return SkippedInput(source, "no visible text after removing markup; add text to it or remove it")
    return Document(doc_id=doc_id, text=text, title=title, source=source)


def _parse_txt(raw: str, stem: str) -> tuple[str, str]:
    return stem, raw.strip()


def _parse_markdown(raw: str, stem: str) -> tuple[str, str]:
    """The markdown is kept as is: headings and lists still carry meaning for the embedding model."""
    return _markdown_title(raw) or stem, raw.strip()


def _markdown_title(raw: str) -> str:
    """First level-1 heading; a ``# comment`` inside a fenced code block is not a heading."""
    in_fence = False
    for line in raw.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        elif not in_fence and line.startswith("# "):
            return line[2:].strip()
    return ""


def _parse_html(raw: str, stem: str) -> tuple[str, str]:
    """Only text a reader would see is indexed; block elements become paragraph breaks so sentences stay apart."""
    soup = BeautifulSoup(raw, "html.parser")
    title = " ".join(soup.title.get_text().split()) if soup.title else ""
    for tag in soup(_HTML_INVISIBLE_TAGS):
        tag.decompose()
    for tag in soup(_HTML_BLOCK_TAGS):
        tag.insert_before("\n\n")
        tag.insert_after("\n\n")
    paragraphs = (" ".join(block.split()) for block in re.split(r"\n\s*\n", soup.get_text()))
    return title or stem, "\n\n".join(paragraph for paragraph in paragraphs if paragraph)


_TEXT_PARSERS: dict[str, Callable[[str, str], tuple[str, str]]] = {
    ".txt": _parse_txt,
    ".md": _parse_markdown,
    ".markdown": _parse_markdown,
    ".html": _parse_html,
    ".htm": _parse_html,
}


def _read_pdf(file: Path, doc_id: str, source: str) -> Document | SkippedInput:
    """A PDF with no text layer is usually a scan: say so, because the fix (OCR) is not obvious."""
    try:
        reader = PdfReader(file)
        pages = [page.extract_text() or "" for page in reader.pages]
        metadata_title = reader.metadata.title if reader.metadata else None
    except Exception as exc:  # pypdf reports broken files with many unrelated exception types
        return SkippedInput(
            source, f"unreadable PDF ({type(exc).__name__}: {exc}); it may be corrupt or encrypted, re-export it"
        )
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    if not text:
        return SkippedInput(source, "PDF has no extractable text; it may be a scanned image and needs OCR")
    title = metadata_title.strip() if isinstance(metadata_title, str) else ""
    return Document(doc_id=doc_id, text=text, title=title or file.stem, source=source)


def _read_jsonl(file: Path, source: str, max_line_bytes: int) -> Iterator[_Item]:
    """Streams line by line, so a multi-gigabyte corpus never sits in memory.

    A truncated download still yields every document before the break, then reports the line it broke on.
    """
    opener = gzip.open if file.name.lower().endswith(".gz") else open
    line_no = 0
    saw_content = False
    with opener(file, "rb") as stream:
        try:
            for line_no, raw in enumerate(_bounded_lines(stream, max_line_bytes), start=1):
                if raw is None:
                    yield SkippedInput(
                        source,
                        f"line is over the {max_line_bytes:,}-byte limit; split the document or raise max_file_bytes",
                        line_no,
                    )
                elif raw.strip():
                    saw_content = True
                    yield _parse_jsonl_line(raw, line_no, source)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            yield SkippedInput(
                source,
                f"compressed data is truncated or corrupt ({exc}); earlier lines were loaded, "
                "re-download or re-compress the file",
                line_no + 1,
            )
            return
    if not saw_content:
        yield SkippedInput(source, "file contains only blank lines; add one JSON object per line or remove it")


def _bounded_lines(stream: BinaryIO, max_line_bytes: int) -> Iterator[bytes | None]:
    """Lines of at most ``max_line_bytes`` (newline excluded); ``None`` stands for a longer line, which is
    read past in bounded pieces so it can never exhaust memory."""
    while line := stream.readline(max_line_bytes + 1):
        if len(line) <= max_line_bytes or line.endswith(b"\n"):
            yield line
            continue
        yield None
        while line and not line.endswith(b"\n"):
            line = stream.readline(max_line_bytes + 1)


def _parse_jsonl_line(raw: bytes, line_no: int, source: str) -> _Item:
    """One BEIR record (``_id``, ``title``, ``text``); each problem names the field so the line can be fixed."""
    try:
        record = json.loads(raw.rstrip(b"\r\n").decode("utf-8").removeprefix("\ufeff"))
    except UnicodeDecodeError as exc:
        return SkippedInput(
            source, f"invalid UTF-8 at byte {exc.start} of the line; re-save the file as UTF-8", line_no
        )
    except json.JSONDecodeError as exc:
        error = f"{exc.msg.removesuffix(' at')} at column {exc.colno}"  # msg may end in "at"; avoid "at at"
        return SkippedInput(source, f"malformed JSON: {error}; fix or remove the line", line_no)
    if not isinstance(record, dict):
        return SkippedInput(
            source, f"line is a JSON {type(record).__name__}, not an object; write one object per line", line_no
        )
    doc_id = record.get("_id")
    if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)) or not str(doc_id).strip():
        return SkippedInput(source, 'missing or empty "_id" field; give every line a unique string "_id"', line_no)
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        return SkippedInput(source, 'missing or empty "text" field; add the document text or remove the line', line_no)
    document = Document(
        doc_id=str(doc_id),
        text=text.strip(),
        title=str(record.get("title") or "").strip(),
        source=source,
        metadata=_jsonl_metadata(record),
    )
    return document, line_no


def _jsonl_metadata(record: dict[str, Any]) -> dict[str, Any]:
    """Extra keys are kept; BEIR's own nested ``metadata`` object is merged in rather than nested a second time."""
    extra = {key: value for key, value in record.items() if key not in _JSONL_DOCUMENT_KEYS}
    if not isinstance(extra.get("metadata"), dict):
        return extra
    nested = extra.pop("metadata")
    return {**nested, **extra}
