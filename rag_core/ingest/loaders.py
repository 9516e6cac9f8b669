"""Turn a corpus directory or file into Documents, and say exactly which inputs were left out and why.

A corpus is messy: one empty, binary or half-downloaded file must not stop ingestion, and a user must be
told precisely what to fix. So every reader yields a ``SkippedInput`` instead of raising, and the walk
goes on to the next input.
"""

import codecs
import errno
import gzip
import hashlib
import json
import os
import re
import stat
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

from rag_core.types import Document, SkippedInput

_TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst", ".html", ".htm")
_GZIP_TEXT_SUFFIXES = tuple(f"{suffix}.gz" for suffix in _TEXT_SUFFIXES)
SUPPORTED_SUFFIXES: tuple[str, ...] = (*_TEXT_SUFFIXES, ".pdf", ".jsonl", *_GZIP_TEXT_SUFFIXES, ".jsonl.gz")
DEFAULT_MAX_FILE_BYTES = 50 * 1024 * 1024

_JSONL_SUFFIXES = (".jsonl", ".jsonl.gz")
_JSONL_DOCUMENT_KEYS = ("_id", "title", "text")
_HTML_SUFFIXES = (".html", ".htm")
# Tags that start a new paragraph: their text must not run into the text around them.
_HTML_BLOCK_TAGS = (
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption", "figure",
    "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p",
    "pre", "section", "table", "td", "th", "tr", "ul",
)  # fmt: skip
_HTML_INVISIBLE_TAGS = ("script", "style", "noscript", "template", "title")
# <meta charset="x">, <meta http-equiv="Content-Type" content="text/html; charset=x">, <?xml ... encoding="x"?>;
# looked for where browsers look, in the first bytes of the file.
_HTML_CHARSET_SCAN_BYTES = 4096
_HTML_DECLARED_CHARSET = re.compile(
    rb"""<meta\b[^>]*?\bcharset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)"""
    rb"""|<\?xml\b[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9_.:-]+)""",
    re.IGNORECASE,
)
# Labels that mean windows-1252 on the web (the WHATWG Encoding Standard): pages labelled ISO-8859-1 use its
# curly quotes and dashes in 0x80-0x9F.
_WINDOWS_1252_LABELS = frozenset(
    {
        "ascii",
        "us-ascii",
        "iso-8859-1",
        "iso8859-1",
        "iso_8859-1",
        "iso88591",
        "latin1",
        "latin-1",
        "l1",
        "cp819",
        "ibm819",
        "cp1252",
        "windows-1252",
        "x-cp1252",
    }
)
# A reStructuredText section adornment: one punctuation character repeated (``=====``, ``-----``, ``~~~~~``).
_RST_ADORNMENT = re.compile(r"""^([!-/:-@\[-`{-~])\1+[ \t]*$""")
_MARKDOWN_SETEXT_H1 = re.compile(r"^ {0,3}=+[ \t]*$")

# A located document: the line is where it sits in a JSONL file (None for one-document files),
# kept so a duplicate id can point at the exact place its first occurrence came from.
_Item = tuple[Document, int | None] | SkippedInput
# (document id or relative path, path, why it cannot be read or None)
_Entry = tuple[str, Path, str | None]
# A file's access labels live beside it, in NAME.access.json (rag_core.security.labels).
SIDECAR_SUFFIX = ".access.json"
SIDECAR_MAX_BYTES = 64 * 1024
SIDECAR_EXAMPLE = '{"groups": ["hr", "legal"], "tenant": "acme"}'


class _NotARegularFile(Exception):
    """The path turned out to be a FIFO, socket or device when opened; the message says which."""


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

    ``max_file_bytes`` caps each file (a compressed one once decompressed), except JSONL corpora, where it caps each
    line (one document). A folder inside the corpus that cannot be listed is a skip report too.
    Raises ``FileNotFoundError`` if ``path`` does not exist, and ``PermissionError`` if it is a folder that cannot be
    read: that is a configuration error, not a bad input (and an empty corpus must not be mistaken for one).
    """
    first_seen: dict[str, str] = {}
    entries = _corpus_files(Path(path))
    documents = {file.name for _, file, _ in entries}
    for doc_id, file, problem in entries:
        if problem is not None:
            yield SkippedInput(str(file), problem)
            continue
        if file.name.endswith(SIDECAR_SUFFIX):
            if file.name.removesuffix(SIDECAR_SUFFIX) not in documents:
                yield SkippedInput(str(file), "access sidecar of no document; rename it after its file or remove it")
            continue
        labels = _sidecar_labels(file)
        if isinstance(labels, SkippedInput):
            yield labels
            continue
        for item in _read_file(file, doc_id, max_file_bytes):
            if isinstance(item, SkippedInput):
                yield item
                continue
            document, line = item
            if labels is not None:
                document = replace(document, groups=labels[0], tenant=labels[1])
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


def _sidecar_labels(file: Path) -> tuple[tuple[str, ...], str] | SkippedInput | None:
    """The access labels ``NAME.access.json`` gives the documents of ``NAME`` (``{"groups": [...], "tenant":
    "..."}``, either key optional), None without one. Whether they are known labels is checked at ingestion. A bad
    sidecar skips its document (reported as the document's file, so a sync keeps what it indexed of it before)."""
    sidecar = file.with_name(file.name + SIDECAR_SUFFIX)
    if not sidecar.is_file():
        return None

    def refused(reason: str) -> SkippedInput:
        return SkippedInput(str(file), f"{sidecar.name}: {reason}; write it like {SIDECAR_EXAMPLE}")

    try:
        with _open_regular_file(sidecar) as stream:
            raw = stream.read(SIDECAR_MAX_BYTES + 1)
        if len(raw) > SIDECAR_MAX_BYTES:
            return refused(f"over {SIDECAR_MAX_BYTES:,} bytes")
        labels = json.loads(raw.decode("utf-8"))
    except (OSError, _NotARegularFile) as exc:
        return refused(f"cannot be read ({exc})")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return refused(f"not valid JSON ({exc})")
    if not isinstance(labels, dict) or set(labels) - {"groups", "tenant"}:
        return refused("not one object with groups and/or tenant")
    groups, tenant = labels.get("groups", []), labels.get("tenant", "")
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        return refused(f"groups must be a list of strings, got {groups!r}")
    if not isinstance(tenant, str):
        return refused(f"tenant must be a string, got {tenant!r}")
    return tuple(groups), tenant


def corpus_fingerprint(path: Path) -> str:
    """Cheap change detector for a sensor: any file added, edited (size or mtime) or removed changes it.

    It covers exactly the files ``iter_inputs`` looks at (hidden ones excluded), without reading them, and the
    folders it could not read, so fixing a folder's permissions counts as a change.
    """
    digest = hashlib.sha256()
    for rel_path, file, problem in _corpus_files(Path(path)):
        if problem is not None:
            digest.update(f"{rel_path}\x1f{problem}\n".encode("utf-8", "surrogateescape"))
            continue
        try:
            info = file.stat()
        except FileNotFoundError:  # removed while we walked, or a dangling link: it is not part of the corpus
            continue
        except OSError as exc:  # e.g. a folder that can be listed but not entered: reported by iter_inputs
            digest.update(f"{rel_path}\x1f{exc.strerror or exc}\n".encode("utf-8", "surrogateescape"))
            continue
        digest.update(f"{rel_path}\x1f{info.st_size}\x1f{info.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _corpus_files(root: Path) -> list[_Entry]:
    """Every non-hidden entry under ``root`` that is not a folder, and every folder that could not be listed,
    sorted so ids and duplicate winners are the same on every run. Symbolic links to folders are not followed
    (they are reported by ``_dispatch``), so a link cannot make the walk loop."""
    if root.is_dir():
        return sorted(_walk(root), key=lambda entry: entry[0])
    if os.path.lexists(root):  # a file, or something that is not one (FIFO, broken link): reported when read
        return [(root.name, root, None)]
    raise FileNotFoundError(f"corpus path {root} does not exist")


def _walk(root: Path) -> Iterator[_Entry]:
    folders = [root]
    while folders:
        folder = folders.pop()
        try:
            with os.scandir(folder) as listing:
                children = list(listing)
        except FileNotFoundError:
            if folder == root:
                raise FileNotFoundError(f"corpus path {root} does not exist") from None
            continue  # removed while we walked: no longer part of the corpus
        except OSError as exc:
            if folder == root:
                raise PermissionError(
                    f"corpus folder {root} cannot be read ({exc.strerror or exc}); check its permissions"
                ) from None
            rel_path = folder.relative_to(root).as_posix()
            yield rel_path, folder, f"cannot read folder ({exc.strerror or exc}); check its permissions"
            continue
        for child in children:
            if child.name.startswith("."):
                continue
            path = Path(child.path)
            if _is_real_folder(child):
                folders.append(path)
            else:
                yield path.relative_to(root).as_posix(), path, None


def _is_real_folder(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _read_file(file: Path, doc_id: str, max_file_bytes: int) -> Iterator[_Item]:
    """A file that vanished or cannot be opened is one more bad input, not a reason to stop the walk."""
    try:
        yield from _dispatch(file, doc_id, max_file_bytes)
    except _NotARegularFile as exc:
        yield SkippedInput(str(file), str(exc))
    except OSError as exc:
        yield SkippedInput(str(file), f"cannot read file ({exc.strerror or exc}); check that it exists and is readable")


def _dispatch(file: Path, doc_id: str, max_file_bytes: int) -> Iterator[_Item]:
    """Pick the reader by suffix; checks that hold for every format are done once, here."""
    source = str(file)
    problem = _not_a_regular_file(file)
    if problem is not None:
        yield SkippedInput(source, problem)
        return
    suffix = _supported_suffix(file.name)
    if suffix is None:
        yield SkippedInput(source, f"unsupported file type; supported: {', '.join(SUPPORTED_SUFFIXES)}")
        return
    stem = file.name[: -len(suffix)] or file.name
    with _open_regular_file(file) as stream:
        size = os.fstat(stream.fileno()).st_size
        if size == 0:
            yield SkippedInput(source, "empty file; add text to it or remove it")
        elif suffix in _JSONL_SUFFIXES:
            yield from _read_jsonl(stream, source, max_file_bytes, compressed=suffix.endswith(".gz"))
        elif suffix in _GZIP_TEXT_SUFFIXES:
            yield _with_no_line(
                _read_gzip_text(stream, doc_id, source, stem, suffix.removesuffix(".gz"), max_file_bytes)
            )
        elif size > max_file_bytes:
            yield SkippedInput(
                source,
                f"file is {size:,} bytes, over the {max_file_bytes:,}-byte limit; split it or raise max_file_bytes",
            )
        elif suffix == ".pdf":
            yield _with_no_line(_read_pdf(stream, doc_id, source, stem))
        else:
            data = stream.read(max_file_bytes + 1)  # bounded even if the file grew since it was measured
            yield _with_no_line(_text_document(data, doc_id, source, stem, suffix, max_file_bytes))


def _not_a_regular_file(file: Path) -> str | None:
    """Why ``file`` is not something to read as a document (a FIFO would block a reader forever), or None."""
    try:
        mode = file.stat().st_mode
    except FileNotFoundError:
        if file.is_symlink():
            return f"is a broken symbolic link to {os.readlink(file)}; fix or remove the link"
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"is a symbolic link loop (via {os.readlink(file)}); fix or remove the link"
        raise
    if stat.S_ISDIR(mode):
        return (
            f"is a symbolic link to the folder {os.readlink(file)}, which is not followed; "
            "ingest that folder itself, or copy it into the corpus"
        )
    return None if stat.S_ISREG(mode) else _file_type_problem(mode)


def _file_type_problem(mode: int) -> str:
    kind = (
        "a FIFO (named pipe)"
        if stat.S_ISFIFO(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "a character device"
        if stat.S_ISCHR(mode)
        else "a block device"
        if stat.S_ISBLK(mode)
        else "not a file"
    )
    return f"is {kind}, not a regular file; remove it from the corpus or replace it with the file it stands for"


def _open_regular_file(file: Path) -> BinaryIO:
    """Open without ever blocking: O_NONBLOCK makes opening a FIFO return at once (it may have replaced the file
    since it was checked), and the type is checked again on the open descriptor."""
    nonblocking = getattr(os, "O_NONBLOCK", 0)  # POSIX; Windows has no FIFOs in the file system
    descriptor = os.open(file, os.O_RDONLY | nonblocking | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise _NotARegularFile(_file_type_problem(mode))
        if nonblocking:
            os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def _supported_suffix(name: str) -> str | None:
    lowered = name.lower()
    return next((suffix for suffix in SUPPORTED_SUFFIXES if lowered.endswith(suffix)), None)


def _with_no_line(result: Document | SkippedInput) -> _Item:
    return result if isinstance(result, SkippedInput) else (result, None)


def _where(source: str, line: int | None) -> str:
    return source if line is None else f"{source}:{line}"


def _read_gzip_text(
    stream: BinaryIO, doc_id: str, source: str, stem: str, suffix: str, max_file_bytes: int
) -> Document | SkippedInput:
    """Decompressed up to one byte past the limit, so a small file that inflates hugely never fills memory."""
    try:
        with gzip.GzipFile(fileobj=stream, mode="rb") as decompressed:
            data = decompressed.read(max_file_bytes + 1)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        return SkippedInput(
            source, f"compressed data is truncated or corrupt ({exc}); re-download or re-compress the file"
        )
    if not data:
        return SkippedInput(source, "empty file once decompressed; add text to it or remove it")
    return _text_document(data, doc_id, source, stem, suffix, max_file_bytes, compressed=True)


def _text_document(
    data: bytes, doc_id: str, source: str, stem: str, suffix: str, max_file_bytes: int, *, compressed: bool = False
) -> Document | SkippedInput:
    """Decode strictly: guessing an encoding would silently index mojibake, so the user is told to re-save.
    The one encoding taken other than UTF-8 is the one an HTML file declares."""
    if len(data) > max_file_bytes:
        what = f"decompresses to more than {max_file_bytes:,} bytes, over" if compressed else "grew past"
        return SkippedInput(source, f"file {what} the {max_file_bytes:,}-byte limit; split it or raise max_file_bytes")
    if b"\x00" in data:
        return SkippedInput(
            source, "contains NUL bytes, so it is binary (or UTF-16); save it as UTF-8 text or remove it"
        )
    raw = _decode(data, source, html=suffix in _HTML_SUFFIXES)
    if isinstance(raw, SkippedInput):
        return raw
    if not raw.strip():
        return SkippedInput(source, "file contains only whitespace; add text to it or remove it")
    title, text = _TEXT_PARSERS[suffix](raw, stem)
    if not text:
        return SkippedInput(source, "no visible text after removing markup; add text to it or remove it")
    return Document(doc_id=doc_id, text=text, title=title, source=source)


def _decode(data: bytes, source: str, *, html: bool) -> str | SkippedInput:
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        not_utf8 = exc
    declared = _declared_html_charset(data) if html else None
    if declared is None:
        hint = ' or declare its encoding (<meta charset="...">)' if html else ""
        return SkippedInput(source, f"invalid UTF-8 at byte {not_utf8.start}; re-save the file as UTF-8{hint}")
    label = declared.lower()
    if label in _WINDOWS_1252_LABELS:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:  # the five bytes windows-1252 leaves undefined: read them as ISO-8859-1 does
            return data.decode("latin-1")
    try:
        return data.decode(codecs.lookup(label).name)
    except LookupError:
        return SkippedInput(
            source,
            f"invalid UTF-8 at byte {not_utf8.start}, and the charset it declares ({declared}) is unknown; "
            "re-save the file as UTF-8",
        )
    except UnicodeDecodeError as exc:
        return SkippedInput(
            source, f"invalid {declared} (the charset it declares) at byte {exc.start}; re-save the file as UTF-8"
        )


def _declared_html_charset(data: bytes) -> str | None:
    match = _HTML_DECLARED_CHARSET.search(data[:_HTML_CHARSET_SCAN_BYTES])
    if match is None:
        return None
    return (match.group(1) or match.group(2)).decode("ascii")


def _parse_txt(raw: str, stem: str) -> tuple[str, str]:
    return stem, raw.strip()


def _parse_markdown(raw: str, stem: str) -> tuple[str, str]:
    """The markdown is kept as is: headings and lists still carry meaning for the embedding model."""
    return _markdown_title(raw) or stem, raw.strip()


def _markdown_title(raw: str) -> str:
    """First level-1 heading (``# Title``, or ``Title`` underlined with ``===``); a ``# comment`` inside a fenced
    code block is not a heading."""
    in_fence = False
    previous = ""
    for line in raw.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
            previous = ""
            continue
        if in_fence:
            continue
        if line.startswith("# "):
            return re.sub(r"\s+#+\s*$", "", line[2:]).strip()
        if previous.strip() and _MARKDOWN_SETEXT_H1.match(line):
            return previous.strip()
        previous = line
    return ""


def _parse_rst(raw: str, stem: str) -> tuple[str, str]:
    return _rst_title(raw) or stem, raw.strip()


def _rst_title(raw: str) -> str:
    """The first section title: a line underlined (and maybe overlined) with one repeated punctuation character,
    as long as the title or at least 4 characters (docutils' rule; ``::`` under a sentence is no underline)."""
    lines = raw.splitlines()
    for number, (line, below) in enumerate(zip(lines, lines[1:])):
        title = line.strip()
        overlined = number > 0 and _RST_ADORNMENT.match(lines[number - 1]) is not None
        underline = len(below.rstrip())
        if (
            title
            and not _RST_ADORNMENT.match(line)
            and _RST_ADORNMENT.match(below)
            and (underline >= len(title) or underline >= 4)
            and (overlined or not line[0].isspace())
            and not title.startswith("..")
        ):
            return title
    return ""


def _parse_html(raw: str, stem: str) -> tuple[str, str]:
    """Only text a reader would see is indexed; block elements become paragraph breaks so sentences stay apart.
    The title is the page's <title>, else its first <h1>, else the file name."""
    from bs4 import BeautifulSoup  # imported when a file needs it: a query process reads no HTML

    soup = BeautifulSoup(raw, "html.parser")
    title = " ".join(soup.title.get_text().split()) if soup.title else ""
    if not title and soup.h1:
        title = " ".join(soup.h1.get_text().split())
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
    ".rst": _parse_rst,
    ".html": _parse_html,
    ".htm": _parse_html,
}


def _read_pdf(stream: BinaryIO, doc_id: str, source: str, stem: str) -> Document | SkippedInput:
    """A PDF with no text layer is usually a scan: say so, because the fix (OCR) is not obvious."""
    from pypdf import PdfReader  # imported when a file needs it: a query process reads no PDF

    try:
        reader = PdfReader(stream)
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
    return Document(doc_id=doc_id, text=text, title=title or stem, source=source)


def _read_jsonl(file: BinaryIO, source: str, max_line_bytes: int, *, compressed: bool) -> Iterator[_Item]:
    """Streams line by line, so a multi-gigabyte corpus never sits in memory.

    A truncated download still yields every document before the break, then reports the line it broke on.
    """
    line_no = 0
    saw_content = False
    with gzip.GzipFile(fileobj=file, mode="rb") if compressed else file as stream:
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
