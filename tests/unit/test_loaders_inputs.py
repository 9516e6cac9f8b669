"""Loaders: folders that cannot be read, files that are not files, declared HTML charsets, reStructuredText and
gzipped text. Each bad input is named for what it is, and the good file beside it still loads."""

import gzip
import os
import stat
from pathlib import Path

import pytest

from rag_core.ingest.loaders import corpus_fingerprint, load_documents
from rag_core.types import SkippedInput

GOOD_TEXT = "A good document that must still be loaded."


def _good(tmp_path: Path) -> Path:
    good = tmp_path / "good.txt"
    good.write_text(GOOD_TEXT, encoding="utf-8")
    return good


def _only_skip(skipped: list[SkippedInput]) -> SkippedInput:
    assert len(skipped) == 1, skipped
    return skipped[0]


def _docs(path: Path, **kwargs: int) -> dict[str, object]:
    return {d.doc_id: d for d in load_documents(path, **kwargs).documents}


# --- folders that cannot be read ------------------------------------------------------------------------------


def _deny_listing(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """What chmod 000 does for a user other than root (tests may run as root, which reads anything)."""
    real_scandir = os.scandir

    def scandir(path: object = ".") -> object:
        if Path(os.fsdecode(path)) == folder:
            raise PermissionError(13, "Permission denied", os.fsdecode(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_unreadable_folder_is_reported_not_silently_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _good(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "inside.txt").write_text("Never seen.", encoding="utf-8")
    _deny_listing(monkeypatch, locked)

    report = load_documents(tmp_path)

    assert [d.doc_id for d in report.documents] == ["good.txt"]
    skip = _only_skip(report.skipped)
    assert skip.source == str(locked)
    assert skip.reason == "cannot read folder (Permission denied); check its permissions"


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0,
    reason="root reads a chmod 000 folder anyway; the simulated test above covers this case",
)
def test_chmod_000_folder_is_reported(tmp_path: Path) -> None:
    _good(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "inside.txt").write_text("Never seen.", encoding="utf-8")
    locked.chmod(0)
    try:
        report = load_documents(tmp_path)
    finally:
        locked.chmod(stat.S_IRWXU)

    assert [d.doc_id for d in report.documents] == ["good.txt"]
    skip = _only_skip(report.skipped)
    assert skip.source == str(locked) and "cannot read folder" in skip.reason and "permissions" in skip.reason


def test_unreadable_corpus_folder_is_an_error_not_an_empty_corpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty corpus would let a sync delete everything indexed: refusing is the safe answer."""
    _good(tmp_path)
    _deny_listing(monkeypatch, tmp_path)

    with pytest.raises(PermissionError, match=r"corpus folder .* cannot be read \(Permission denied\); check its"):
        load_documents(tmp_path)


def test_fingerprint_changes_when_a_folder_becomes_readable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _good(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "inside.txt").write_text("Seen once readable.", encoding="utf-8")
    readable = corpus_fingerprint(tmp_path)
    with monkeypatch.context() as patch:
        _deny_listing(patch, locked)
        unreadable = corpus_fingerprint(tmp_path)
        assert unreadable == corpus_fingerprint(tmp_path)
    assert unreadable != readable
    assert corpus_fingerprint(tmp_path) == readable


# --- things that are not regular files --------------------------------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize("name", ["pipe.txt", "pipe.jsonl", "pipe.txt.gz", "pipe"])
def test_fifo_in_folder_is_named_and_never_blocks(tmp_path: Path, name: str) -> None:
    _good(tmp_path)
    fifo = tmp_path / name
    os.mkfifo(fifo)

    report = load_documents(tmp_path)

    assert [d.doc_id for d in report.documents] == ["good.txt"]
    skip = _only_skip(report.skipped)
    assert skip.source == str(fifo)
    assert skip.reason.startswith("is a FIFO (named pipe), not a regular file")


@pytest.mark.timeout(20)
def test_fifo_given_as_the_path(tmp_path: Path) -> None:
    fifo = tmp_path / "notes.md"
    os.mkfifo(fifo)

    skip = _only_skip(load_documents(fifo).skipped)

    assert skip.source == str(fifo) and skip.reason.startswith("is a FIFO (named pipe), not a regular file")


def test_broken_symlink_given_as_the_path_is_not_reported_missing(tmp_path: Path) -> None:
    link = tmp_path / "notes.md"
    link.symlink_to("../moved/notes.md")

    skip = _only_skip(load_documents(link).skipped)

    assert skip.source == str(link)
    assert skip.reason.startswith("is a broken symbolic link to ../moved/notes.md")


def test_symlink_to_a_folder_is_named_not_silently_left_out(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _good(corpus)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x.txt").write_text("x", encoding="utf-8")
    (corpus / "linked").symlink_to(elsewhere)

    report = load_documents(corpus)

    assert [d.doc_id for d in report.documents] == ["good.txt"]
    skip = _only_skip(report.skipped)
    assert skip.source == str(corpus / "linked") and "symbolic link to the folder" in skip.reason


# --- HTML that declares its charset ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "head",
    [
        b'<meta charset="iso-8859-1">',
        b"<META CHARSET=ISO-8859-1>",
        b'<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">',
    ],
    ids=["meta-charset", "upper-case-unquoted", "http-equiv"],
)
def test_html_in_its_declared_charset(tmp_path: Path, head: bytes) -> None:
    page = b"<html><head>" + head + b"<title>Caf\xe9</title></head><body><p>Un caf\xe9 cr\xe8me.</p></body></html>"
    (tmp_path / "menu.html").write_bytes(page)

    report = load_documents(tmp_path)

    assert report.skipped == []
    (document,) = report.documents
    assert (document.title, document.text) == ("Café", "Un café crème.")


def test_html_labelled_latin1_reads_windows_1252_quotes_like_a_browser(tmp_path: Path) -> None:
    (tmp_path / "quotes.htm").write_bytes(b'<meta charset="iso-8859-1"><p>\x93quoted\x94 \x96 dash</p>')
    assert _docs(tmp_path)["quotes.htm"].text == "\u201cquoted\u201d \u2013 dash"


def test_html_other_declared_charsets(tmp_path: Path) -> None:
    (tmp_path / "ru.html").write_bytes('<meta charset="koi8-r"><p>Привет</p>'.encode("koi8-r"))
    (tmp_path / "utf8.html").write_text('<meta charset="iso-8859-1"><p>déjà vu</p>', encoding="utf-8")
    docs = _docs(tmp_path)
    assert docs["ru.html"].text == "Привет"
    assert docs["utf8.html"].text == "déjà vu", "valid UTF-8 is read as UTF-8 whatever the label"


def test_html_with_an_unknown_or_no_charset_is_reported(tmp_path: Path) -> None:
    (tmp_path / "odd.html").write_bytes(b'<meta charset="x-made-up"><p>caf\xe9</p>')
    (tmp_path / "plain.html").write_bytes(b"<p>caf\xe9</p>")
    skipped = {Path(s.source).name: s.reason for s in load_documents(tmp_path).skipped}
    assert "x-made-up" in skipped["odd.html"] and "unknown" in skipped["odd.html"]
    assert skipped["plain.html"].startswith("invalid UTF-8 at byte 6") and "<meta charset" in skipped["plain.html"]


def test_a_txt_file_gets_no_charset_guess(tmp_path: Path) -> None:
    """Only HTML can declare an encoding; a .txt that says charset= in its text is still UTF-8 or nothing."""
    (tmp_path / "note.txt").write_bytes(b'<meta charset="iso-8859-1"> caf\xe9')
    assert _only_skip(load_documents(tmp_path).skipped).reason.startswith("invalid UTF-8")


# --- reStructuredText, titles ---------------------------------------------------------------------------------


def test_rst_is_read_as_text_with_its_section_title(tmp_path: Path) -> None:
    (tmp_path / "guide.rst").write_text(
        ".. comment line\n\nGuide to Compaction\n===================\n\nRun it weekly.\n\nDetails\n-------\n",
        encoding="utf-8",
    )
    (tmp_path / "overlined.rst").write_text("=========\n Overview\n=========\n\nText.\n", encoding="utf-8")
    (tmp_path / "plain.rst").write_text(
        "Just a paragraph, no section.\n\n=====  =====\nA      B\n=====  =====\n\nAn example follows\n::\n\n    code\n",
        encoding="utf-8",
    )

    docs = _docs(tmp_path)

    assert docs["guide.rst"].title == "Guide to Compaction"
    assert docs["guide.rst"].text.startswith(".. comment line") and "Run it weekly." in docs["guide.rst"].text
    assert docs["overlined.rst"].title == "Overview"
    assert docs["plain.rst"].title == "plain", "no section title: the file name"


def test_files_without_a_heading_are_titled_by_their_name(tmp_path: Path) -> None:
    (tmp_path / "setext.md").write_text("Release Notes\n=============\n\nText.\n", encoding="utf-8")
    (tmp_path / "closed.md").write_text("# Closed Heading ##\n\nText.\n", encoding="utf-8")
    (tmp_path / "level2.md").write_text("Only a subsection\n-----------------\n\nText.\n", encoding="utf-8")
    (tmp_path / "heading.html").write_text("<h1>Page Heading</h1><p>Body</p>", encoding="utf-8")
    (tmp_path / "bare.html").write_text("<p>Body</p>", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("# not a heading in plain text\n", encoding="utf-8")

    titles = {doc_id: d.title for doc_id, d in _docs(tmp_path).items()}

    assert titles == {
        "setext.md": "Release Notes",
        "closed.md": "Closed Heading",
        "level2.md": "level2",
        "heading.html": "Page Heading",
        "bare.html": "bare",
        "notes.txt": "notes",
    }


# --- gzipped text ----------------------------------------------------------------------------------------------


def test_gzipped_text_files_are_decompressed(tmp_path: Path) -> None:
    (tmp_path / "a.txt.gz").write_bytes(gzip.compress(b"Plain text, compressed."))
    (tmp_path / "b.md.gz").write_bytes(gzip.compress(b"# Markdown Title\n\nBody."))
    (tmp_path / "c.rst.gz").write_bytes(gzip.compress(b"Rst Title\n=========\n\nBody."))
    (tmp_path / "d.html.gz").write_bytes(gzip.compress(b'<meta charset="iso-8859-1"><p>caf\xe9</p>'))
    (tmp_path / "E.TXT.GZ").write_bytes(gzip.compress(b"Upper case suffix."))

    report = load_documents(tmp_path)

    assert report.skipped == []
    docs = {d.doc_id: d for d in report.documents}
    assert docs["a.txt.gz"].text == "Plain text, compressed." and docs["a.txt.gz"].title == "a"
    assert docs["b.md.gz"].title == "Markdown Title"
    assert docs["c.rst.gz"].title == "Rst Title"
    assert docs["d.html.gz"].text == "café" and docs["d.html.gz"].title == "d"
    assert docs["E.TXT.GZ"].text == "Upper case suffix."


def test_gzipped_text_limit_is_on_the_decompressed_size(tmp_path: Path) -> None:
    bomb = gzip.compress(b"a" * (32 * 1024 * 1024), compresslevel=9)  # 32 MiB of text in ~32 KiB
    assert len(bomb) < 100_000
    (tmp_path / "bomb.txt.gz").write_bytes(bomb)
    (tmp_path / "small.txt.gz").write_bytes(gzip.compress(b"b" * 900))

    report = load_documents(tmp_path, max_file_bytes=1000)

    assert [d.doc_id for d in report.documents] == ["small.txt.gz"]
    skip = _only_skip(report.skipped)
    assert skip.source == str(tmp_path / "bomb.txt.gz")
    assert "decompresses to more than 1,000 bytes" in skip.reason and "max_file_bytes" in skip.reason


def test_gzipped_text_never_reads_more_than_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int] = []
    real_read = gzip.GzipFile.read

    def read(self: gzip.GzipFile, size: int = -1) -> bytes:
        asked.append(size)
        return real_read(self, size)

    monkeypatch.setattr(gzip.GzipFile, "read", read)
    (tmp_path / "big.md.gz").write_bytes(gzip.compress(b"c" * 50_000))

    load_documents(tmp_path, max_file_bytes=1000)

    assert asked and all(0 <= size <= 1001 for size in asked), asked


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (gzip.compress(b"Some text that is cut off.")[:-10], "compressed data is truncated or corrupt"),
        (b"this is not gzip data", "compressed data is truncated or corrupt"),
        (gzip.compress(b""), "empty file once decompressed"),
        (gzip.compress(b"caf\xe9"), "invalid UTF-8 at byte 3"),
    ],
    ids=["truncated", "not-gzip", "empty-inside", "not-utf8-inside"],
)
def test_bad_gzipped_text_is_reported(tmp_path: Path, content: bytes, expected: str) -> None:
    _good(tmp_path)
    (tmp_path / "bad.txt.gz").write_bytes(content)

    report = load_documents(tmp_path)

    assert [d.doc_id for d in report.documents] == ["good.txt"]
    skip = _only_skip(report.skipped)
    assert skip.source == str(tmp_path / "bad.txt.gz") and skip.reason.startswith(expected), skip.reason
