"""Loaders: every format reads correctly, and every bad input is reported without losing the good ones."""

import gzip
import json
import os
from pathlib import Path

import pytest
from pypdf import PdfWriter

from rag_core.ingest.loaders import (
    SUPPORTED_SUFFIXES,
    LoadReport,
    corpus_fingerprint,
    iter_inputs,
    load_documents,
)
from rag_core.types import Document, SkippedInput
from tests.support.paths import SCIFACT

SCIFACT_CORPUS = SCIFACT / "corpus.jsonl.gz"
GOOD_TEXT = "A good document that must still be loaded."


def _pdf_with_text(text: str, title: str | None = None) -> bytes:
    """A minimal valid one-page PDF whose page draws ``text`` in Helvetica."""
    stream = f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    if title is not None:
        objects.append(b"<< /Title (" + title.encode("latin-1") + b") >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    info = b" /Info %d 0 R" % len(objects) if title is not None else b""
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, info, xref_at)
    return bytes(out)


def _blank_pdf(path: Path) -> None:
    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)
    with path.open("wb") as handle:
        writer.write(handle)


def _jsonl(records: list[object]) -> bytes:
    return "".join(json.dumps(record) + "\n" for record in records).encode("utf-8")


def _load_next_to_good(tmp_path: Path, name: str, content: bytes, **kwargs: int) -> tuple[LoadReport, Path]:
    """Write ``name`` beside a good file and load the directory."""
    (tmp_path / "good.txt").write_text(GOOD_TEXT, encoding="utf-8")
    bad = tmp_path / name
    bad.write_bytes(content)
    return load_documents(tmp_path, **kwargs), bad


def _assert_good_loaded(report: LoadReport) -> None:
    assert [(d.doc_id, d.text) for d in report.documents] == [("good.txt", GOOD_TEXT)]


def _only_skip(report: LoadReport) -> SkippedInput:
    assert len(report.skipped) == 1, report.skipped
    return report.skipped[0]


# --- good formats ---------------------------------------------------------------------------------------------


def test_supported_suffixes_are_all_read(tmp_path: Path) -> None:
    """Every suffix the loader claims (and names in its "unsupported" message) really is read."""
    for number, suffix in enumerate(SUPPORTED_SUFFIXES):
        name = f"doc{number}{suffix}"
        if ".pdf" in suffix:
            content = _pdf_with_text(f"Document {number}")
        elif ".jsonl" in suffix:
            content = _jsonl([{"_id": name, "text": f"Document {number}"}])
        else:
            content = f"Document {number}".encode()
        (tmp_path / name).write_bytes(gzip.compress(content) if suffix.endswith(".gz") else content)

    report = load_documents(tmp_path)

    assert report.skipped == []
    assert sorted(d.text for d in report.documents) == sorted(f"Document {n}" for n in range(len(SUPPORTED_SUFFIXES)))


def test_txt_title_is_stem_and_doc_id_is_relative_posix_path(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "sub" / "deeper" / "notes.txt").write_text("  Some notes.\n\n", encoding="utf-8")

    report = load_documents(tmp_path)

    assert report.skipped == []
    assert report.documents == [
        Document(
            doc_id="sub/deeper/notes.txt",
            text="Some notes.",
            title="notes",
            source=str(tmp_path / "sub" / "deeper" / "notes.txt"),
        )
    ]


def test_markdown_title_is_first_h1_outside_code_fences(tmp_path: Path) -> None:
    body = "Intro line.\n\n```bash\n# not a heading\n```\n\n## Sub first\n\n# Real Title\n\nText.\n\n# Second\n"
    (tmp_path / "guide.md").write_text(body, encoding="utf-8")
    (tmp_path / "plain.markdown").write_text("No heading here.\n", encoding="utf-8")

    docs = {d.doc_id: d for d in load_documents(tmp_path).documents}

    assert docs["guide.md"].title == "Real Title"
    assert docs["guide.md"].text == body.strip()
    assert docs["plain.markdown"].title == "plain"
    assert docs["plain.markdown"].text == "No heading here."


def test_html_visible_text_with_paragraph_breaks(tmp_path: Path) -> None:
    html = """<!DOCTYPE html><html><head><title> The
      Page </title><style>p { color: red; }</style><script>var hidden = 1;</script></head>
    <body><h1>Heading</h1><p>First <b>bold</b>
    paragraph.</p><!-- a comment --><div>Second<br>line</div><ul><li>one</li><li>two</li></ul></body></html>"""
    (tmp_path / "page.html").write_text(html, encoding="utf-8")
    (tmp_path / "untitled.htm").write_text("<p>Only text</p>", encoding="utf-8")

    docs = {d.doc_id: d for d in load_documents(tmp_path).documents}

    assert docs["page.html"].title == "The Page"
    assert docs["page.html"].text == "Heading\n\nFirst bold paragraph.\n\nSecond\n\nline\n\none\n\ntwo"
    assert docs["untitled.htm"].title == "untitled"
    assert docs["untitled.htm"].text == "Only text"


def test_pdf_text_and_title_from_metadata_or_stem(tmp_path: Path) -> None:
    (tmp_path / "titled.pdf").write_bytes(_pdf_with_text("Hello PDF world", title="Paper Title"))
    (tmp_path / "plain.pdf").write_bytes(_pdf_with_text("Another page"))

    report = load_documents(tmp_path)

    assert report.skipped == []
    docs = {d.doc_id: d for d in report.documents}
    assert docs["titled.pdf"].title == "Paper Title"
    assert docs["titled.pdf"].text == "Hello PDF world"
    assert docs["plain.pdf"].title == "plain"
    assert docs["plain.pdf"].text == "Another page"


@pytest.mark.parametrize("name", ["corpus.jsonl", "corpus.jsonl.gz"])
def test_beir_jsonl_ids_titles_metadata(tmp_path: Path, name: str) -> None:
    content = _jsonl(
        [
            {"_id": "d1", "title": "First", "text": "Alpha text.", "year": 2020},
            {"_id": 42, "text": "Beta text.", "metadata": {"url": "http://x", "year": 1999}, "year": 2021},
        ]
    )
    content = content.replace(b"\n", b"\n\n   \n", 1)  # blank lines are ignored
    path = tmp_path / name
    path.write_bytes(gzip.compress(content) if name.endswith(".gz") else content)

    report = load_documents(path)

    assert report.skipped == []
    assert report.documents == [
        Document(doc_id="d1", text="Alpha text.", title="First", source=str(path), metadata={"year": 2020}),
        Document(
            doc_id="42", text="Beta text.", title="", source=str(path), metadata={"url": "http://x", "year": 2021}
        ),
    ]


def test_single_file_doc_id_is_its_name(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    file = tmp_path / "sub" / "alone.txt"
    file.write_text("Alone.", encoding="utf-8")

    expected = Document(doc_id="alone.txt", text="Alone.", title="alone", source=str(file))
    assert load_documents(file).documents == [expected]


def test_hidden_files_and_dirs_are_skipped_and_order_is_sorted(tmp_path: Path) -> None:
    for rel in ["b.txt", "a/z.txt", "a.txt", ".hidden.txt", ".git/config.txt", "c/.secret/x.txt"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(f"text of {rel}", encoding="utf-8")

    report = load_documents(tmp_path)

    assert [d.doc_id for d in report.documents] == ["a.txt", "a/z.txt", "b.txt"]
    assert report.skipped == []


def test_iter_inputs_streams_documents_and_skips_in_order(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("A.", encoding="utf-8")
    (tmp_path / "b.csv").write_text("x,y", encoding="utf-8")
    (tmp_path / "c.txt").write_text("C.", encoding="utf-8")

    items = list(iter_inputs(tmp_path))

    assert [type(item) for item in items] == [Document, SkippedInput, Document]
    assert items[1].source == str(tmp_path / "b.csv")


def test_missing_path_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_documents(tmp_path / "nope")


def test_real_scifact_corpus_loads_completely() -> None:
    if not SCIFACT_CORPUS.exists():
        pytest.skip(f"{SCIFACT_CORPUS} is not present")

    report = load_documents(SCIFACT_CORPUS)

    assert report.skipped == []
    assert len(report.documents) == 5183
    assert len({d.doc_id for d in report.documents}) == 5183
    first = report.documents[0]
    assert first.doc_id == "4983"
    assert first.title.startswith("Microstructural development of human newborn cerebral white matter")
    assert first.source == str(SCIFACT_CORPUS)
    assert first.metadata == {}


# --- bad inputs: each is reported, and the good file beside it still loads ------------------------------------


def test_empty_file(tmp_path: Path) -> None:
    report, bad = _load_next_to_good(tmp_path, "empty.md", b"")

    _assert_good_loaded(report)
    skip = _only_skip(report)
    assert (skip.source, skip.line) == (str(bad), None)
    assert skip.reason.startswith("empty file")


def test_whitespace_only_file(tmp_path: Path) -> None:
    report, bad = _load_next_to_good(tmp_path, "blank.txt", b" \n\t\n  ")

    _assert_good_loaded(report)
    skip = _only_skip(report)
    assert skip.source == str(bad)
    assert "only whitespace" in skip.reason


def test_binary_file_with_nul_bytes(tmp_path: Path) -> None:
    report, bad = _load_next_to_good(tmp_path, "image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")

    _assert_good_loaded(report)
    skip = _only_skip(report)
    assert skip.source == str(bad)
    assert "NUL bytes" in skip.reason and "binary" in skip.reason


def test_invalid_utf8_names_byte_offset(tmp_path: Path) -> None:
    valid_prefix = "caf\u00e9 au lait, na".encode("utf-8")  # 17 bytes: the accent takes two
    report, bad = _load_next_to_good(tmp_path, "latin1.txt", valid_prefix + b"\xefve")

    _assert_good_loaded(report)
    skip = _only_skip(report)
    assert skip.source == str(bad)
    assert skip.reason == "invalid UTF-8 at byte 17; re-save the file as UTF-8"


def test_html_without_visible_text(tmp_path: Path) -> None:
    report, bad = _load_next_to_good(tmp_path, "script.html", b"<html><script>alert(1)</script></html>")

    _assert_good_loaded(report)
    skip = _only_skip(report)
    assert skip.source == str(bad)
    assert "no visible text" in skip.reason


def test_unsupported_extension_names_supported_ones(tmp_path: Path) -> None:
    report, bad = _load_next_to_good(tmp_path, "table.csv", b"a,b\n1,2\n")

    _assert_good_loaded(report)
    skip = _only_skip(report)
    assert skip.source == str(bad)
    assert "unsupported file type" in skip.reason
    assert all(suffix in skip.reason for suffix in SUPPORTED_SUFFIXES)


def test_file_over_size_limit(tmp_path: Path) -> None:
    report, bad = _load_next_to_good(tmp_path, "huge.txt", b"x" * 101, max_file_bytes=100)

    _assert_good_loaded(report)
    skip = _only_skip(report)
    assert skip.source == str(bad)
    assert "101 bytes" in skip.reason and "100-byte limit" in skip.reason and "max_file_bytes" in skip.reason


def test_jsonl_size_limit_applies_per_line(tmp_path: Path) -> None:
    long_line = {"_id": "long", "text": "y" * 200}
    content = _jsonl([{"_id": "a", "text": "short"}, long_line, {"_id": "b", "text": "also short"}])
    (tmp_path / "good.txt").write_text(GOOD_TEXT, encoding="utf-8")
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(content)

    report = load_documents(tmp_path, max_file_bytes=100)  # the file (~270 bytes) is larger, but short lines pass

    assert [d.doc_id for d in report.documents] == ["a", "b", "good.txt"]
    skip = _only_skip(report)
    assert (skip.source, skip.line) == (str(path), 2)
    assert "100-byte limit" in skip.reason


def test_truncated_gz_keeps_documents_before_the_break(tmp_path: Path) -> None:
    records = [{"_id": f"doc{i}", "text": f"Document number {i} " + "filler " * (i % 7)} for i in range(2000)]
    compressed = gzip.compress(_jsonl(records))
    report, bad = _load_next_to_good(tmp_path, "corpus.jsonl.gz", compressed[: len(compressed) // 2])

    loaded = [d for d in report.documents if d.doc_id != "good.txt"]
    assert 0 < len(loaded) < 2000
    assert [d.doc_id for d in loaded] == [f"doc{i}" for i in range(len(loaded))]
    assert "good.txt" in {d.doc_id for d in report.documents}
    skip = _only_skip(report)
    assert (skip.source, skip.line) == (str(bad), len(loaded) + 1)
    assert "truncated or corrupt" in skip.reason


def test_not_gzip_data_in_jsonl_gz(tmp_path: Path) -> None:
    report, bad = _load_next_to_good(tmp_path, "corpus.jsonl.gz", _jsonl([{"_id": "a", "text": "plain"}]))

    _assert_good_loaded(report)
    skip = _only_skip(report)
    assert (skip.source, skip.line) == (str(bad), 1)
    assert "truncated or corrupt" in skip.reason


@pytest.mark.parametrize(
    ("bad_line", "expected"),
    [
        (b'{"_id": "x", "text": "unterminated', "malformed JSON: Unterminated string starting at column 22;"),
        (b'["_id", "text"]', "JSON list, not an object"),
        (b'{"title": "no id", "text": "t"}', '"_id" field'),
        (b'{"_id": "", "text": "t"}', '"_id" field'),
        (b'{"_id": "x", "title": "no text"}', '"text" field'),
        (b"not json", "malformed JSON: Expecting value at column 1;"),
        (b'{"_id": "x", "text": "   "}', '"text" field'),
        (b'{"_id": "x", "text": "caf\xe9"}', "invalid UTF-8 at byte 25 of the line"),
    ],
)
def test_bad_jsonl_line_is_reported_with_its_line_number(tmp_path: Path, bad_line: bytes, expected: str) -> None:
    content = _jsonl([{"_id": "a", "text": "A."}]) + b"\n" + bad_line + b"\n" + _jsonl([{"_id": "b", "text": "B."}])
    report, bad = _load_next_to_good(tmp_path, "corpus.jsonl", content)

    assert [d.doc_id for d in report.documents] == ["a", "b", "good.txt"]
    skip = _only_skip(report)
    assert (skip.source, skip.line) == (str(bad), 3)  # line 2 is blank and still counted
    assert expected in skip.reason


def test_jsonl_with_only_blank_lines(tmp_path: Path) -> None:
    report, bad = _load_next_to_good(tmp_path, "corpus.jsonl", b"\n  \n\n")

    _assert_good_loaded(report)
    skip = _only_skip(report)
    assert skip.source == str(bad)
    assert "only blank lines" in skip.reason


def test_duplicate_ids_keep_the_first_and_name_where_it_came_from(tmp_path: Path) -> None:
    first = tmp_path / "a.jsonl"
    first.write_bytes(_jsonl([{"_id": "dup", "text": "first"}, {"_id": "other", "text": "o"}]))
    second = tmp_path / "b.jsonl"
    second.write_bytes(_jsonl([{"_id": "x", "text": "x"}, {"_id": "dup", "text": "second"}]))
    (tmp_path / "good.txt").write_text(GOOD_TEXT, encoding="utf-8")

    report = load_documents(tmp_path)

    assert [(d.doc_id, d.text) for d in report.documents] == [
        ("dup", "first"),
        ("other", "o"),
        ("x", "x"),
        ("good.txt", GOOD_TEXT),
    ]
    skip = _only_skip(report)
    assert (skip.source, skip.line) == (str(second), 2)
    assert f"first seen at {first}:1" in skip.reason
    assert "'dup'" in skip.reason


def test_pdf_without_text_needs_ocr(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text(GOOD_TEXT, encoding="utf-8")
    scan = tmp_path / "scan.pdf"
    _blank_pdf(scan)

    report = load_documents(tmp_path)

    _assert_good_loaded(report)
    skip = _only_skip(report)
    assert skip.source == str(scan)
    assert "no extractable text" in skip.reason and "scanned image" in skip.reason and "OCR" in skip.reason


@pytest.mark.parametrize(
    "content",
    [b"This is not a PDF at all.", _pdf_with_text("cut short")[:60]],
    ids=["garbage", "truncated"],
)
def test_corrupt_pdf(tmp_path: Path, content: bytes) -> None:
    report, bad = _load_next_to_good(tmp_path, "broken.pdf", content)

    _assert_good_loaded(report)
    skip = _only_skip(report)
    assert skip.source == str(bad)
    assert skip.reason.startswith("unreadable PDF (")
    assert "corrupt" in skip.reason


def test_dangling_symlink_is_reported(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text(GOOD_TEXT, encoding="utf-8")
    link = tmp_path / "gone.txt"
    link.symlink_to(tmp_path / "missing-target.txt")

    report = load_documents(tmp_path)

    _assert_good_loaded(report)
    skip = _only_skip(report)
    assert skip.source == str(link)
    assert skip.reason.startswith(f"is a broken symbolic link to {tmp_path / 'missing-target.txt'}")


# --- corpus_fingerprint -------------------------------------------------------------------------------------


def test_fingerprint_tracks_added_edited_and_removed_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    kept = tmp_path / "sub" / "kept.txt"
    kept.write_text("kept", encoding="utf-8")
    base = corpus_fingerprint(tmp_path)
    assert base == corpus_fingerprint(tmp_path)
    assert len(base) == 64

    added = tmp_path / "added.md"
    added.write_text("# New", encoding="utf-8")
    after_add = corpus_fingerprint(tmp_path)
    assert after_add != base
    assert after_add == corpus_fingerprint(tmp_path)

    stat = kept.stat()
    os.utime(kept, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    after_edit = corpus_fingerprint(tmp_path)
    assert after_edit not in (base, after_add)

    added.unlink()
    after_remove = corpus_fingerprint(tmp_path)
    assert after_remove not in (base, after_add, after_edit)

    os.utime(kept, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert corpus_fingerprint(tmp_path) == base  # back to the same files, sizes and times


def test_fingerprint_ignores_hidden_files(tmp_path: Path) -> None:
    (tmp_path / "doc.txt").write_text("doc", encoding="utf-8")
    base = corpus_fingerprint(tmp_path)

    (tmp_path / ".DS_Store").write_bytes(b"\x00")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "x.txt").write_text("x", encoding="utf-8")

    assert corpus_fingerprint(tmp_path) == base
