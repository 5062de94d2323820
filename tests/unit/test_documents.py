"""LOAD: every format's text, sections and citations; bad files skipped, counted, never fatal."""

import json
import logging
from pathlib import Path

import pytest

from qa.build import build_index
from qa.retriever import Retriever
from qa.chunking import chunk_document
from qa.frontends.cli import main
from qa.documents import Unreadable, list_files, load_corpus, read_document
from qa.schema import cite, unit_locator
from conftest import patch_embedder

HTML = """<!DOCTYPE html>
<html>
<head><title>The Mill —  Village Guide</title>
<style>
body { color: red; }
</style>
</head>
<body>
<h1>The Mill</h1>
<p>The mill grinds wheat &amp; rye.
It was built in 1850 by the miller's guild.</p>
<script>var x = "Hidden script text.";</script>
<h2 class="x">Opening
hours</h2><p>Open on Sundays only.</p>
<!-- a comment
over two lines -->
<ul><li>Tours at noon.</li><li>Tea at four.</li></ul>
</body>
</html>
"""


def make_pdf(path: Path, pages: list[str], password: str | None = None) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    if password:
        pdf.set_encryption(owner_password="owner", user_password=password)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path


def make_docx(path: Path, blocks: list[tuple[str, str]]) -> Path:
    import docx

    document = docx.Document()
    for style, text in blocks:
        if style.startswith("h"):
            document.add_heading(text, level=int(style[1:]))
        else:
            document.add_paragraph(text)
    document.save(str(path))
    return path


DOCX_BLOCKS = [
    ("h1", "Harbour Rules"),
    ("p", "Boats must moor at the east pier. Mooring fees are paid monthly at the office."),
    ("h2", "Fishing"),
    ("p", "Nets are dried on the quay."),
    ("p", "No fishing from the pier after dark."),
]
PDF_PAGES = [
    "The lamp of the lighthouse is lit at dusk by the keeper. It burns paraffin oil all night.",
    "The keeper's log records every passing ship. Storms are noted in red ink.",
]


def test_text_formats_are_the_file_exactly(corpus_dir):
    for source in ("garden.txt", "sub/boats.md"):
        doc = read_document(corpus_dir / source, source)
        assert doc.text == (corpus_dir / source).read_bytes().decode("utf-8")
        assert doc.format == source.rsplit(".", 1)[1] and doc.units == () and doc.headings is None


def test_html_visible_text_on_the_files_own_lines(tmp_path):
    path = tmp_path / "mill.html"
    path.write_text(HTML, encoding="utf-8")
    doc = read_document(path, "mill.html")
    lines, file_lines = doc.text.split("\n"), HTML.split("\n")
    assert len(lines) == len(file_lines)
    visible = {i + 1: line.strip() for i, line in enumerate(lines) if line.strip()}
    assert visible == {
        9: "The Mill",
        10: "The mill grinds wheat & rye.",
        11: "It was built in 1850 by the miller's guild.",
        13: "Opening",
        14: "hours Open on Sundays only.",
        17: "Tours at noon. Tea at four.",
    }
    for word in ("Village Guide", "color", "Hidden script", "comment"):
        assert word not in doc.text
    assert doc.title == "The Mill — Village Guide"  # names the first heading: its paths stay as they are
    assert [(doc.text[a:b], level, title) for a, b, level, title in doc.headings] == [
        ("The Mill", 1, "The Mill"),
        ("Opening\nhours", 2, "Opening hours"),
    ]
    passages = chunk_document(doc)
    assert [(p.section, p.start_line, p.end_line, p.citation, p.text) for p in passages] == [
        ("The Mill", 10, 11, "mill.html:L10-L11", "The mill grinds wheat & rye.\nIt was built in 1850 by the miller's guild."),
        ("The Mill › Opening hours", 14, 17, "mill.html:L14-L17", "Open on Sundays only. \n\n\nTours at noon. Tea at four."),
    ]
    for p in passages:
        assert p.text == doc.text[p.start_char : p.end_char]


def test_html_title_roots_the_heading_paths_that_do_not_name_it(tmp_path):
    page = ("<html><head><title>DELETE</title></head><body><svg><title>icon</title></svg>\n"
            "<p>The DELETE command removes rows from a table.</p>\n"
            "<h2>1. Overview</h2><p>Rows for which the WHERE clause is true are removed.</p>\n"
            "<h3>1.1. Limits</h3><p>An ORDER BY and a LIMIT clause may bound the rows removed.</p></body></html>\n")
    path = tmp_path / "lang_delete.html"
    path.write_text(page, encoding="utf-8")
    doc = read_document(path, "lang_delete.html")
    assert doc.title == "DELETE" and "icon" not in doc.text and "DELETE\n" not in doc.text.split("The DELETE")[0]
    passages = chunk_document(doc)
    assert [(p.section, p.text) for p in passages] == [
        ("DELETE", "The DELETE command removes rows from a table."),
        ("DELETE › 1. Overview", "Rows for which the WHERE clause is true are removed."),
        ("DELETE › 1. Overview › 1.1. Limits", "An ORDER BY and a LIMIT clause may bound the rows removed."),
    ]
    assert all(p.text == doc.text[p.start_char : p.end_char] for p in passages)


def test_pdf_text_per_page_and_page_citations(tmp_path):
    path = make_pdf(tmp_path / "light.pdf", PDF_PAGES)
    doc = read_document(path, "light.pdf")
    assert doc.unit == "page" and len(doc.units) == 2
    page2 = doc.text[doc.units[1] :]
    assert page2 == PDF_PAGES[1]
    passages = chunk_document(doc)
    assert [(p.page, p.locator, p.citation, p.text) for p in passages] == [
        (1, "p.1", "light.pdf p.1", PDF_PAGES[0]),
        (2, "p.2", "light.pdf p.2", PDF_PAGES[1]),
    ]
    from pypdf import PdfReader

    pages = PdfReader(str(path)).pages
    for p in passages:  # checkable: the passage is on the page it names
        assert p.text == doc.text[p.start_char : p.end_char]
        assert " ".join(p.text.split()) in " ".join(pages[p.page - 1].extract_text().split())


def test_docx_paragraphs_headings_and_paragraph_citations(tmp_path):
    path = make_docx(tmp_path / "rules.docx", DOCX_BLOCKS)
    doc = read_document(path, "rules.docx")
    assert doc.text == "\n\n".join(text for _, text in DOCX_BLOCKS)
    assert [(level, title) for _, _, level, title in doc.headings] == [(1, "Harbour Rules"), (2, "Fishing")]
    passages = chunk_document(doc)
    assert [(p.section, p.locator, p.citation, p.page) for p in passages] == [
        ("Harbour Rules", "¶2", "rules.docx ¶2", None),
        ("Harbour Rules › Fishing", "¶4-5", "rules.docx ¶4-5", None),
    ]
    import docx

    paragraphs = docx.Document(str(path)).paragraphs
    assert passages[1].text == "\n\n".join(paragraphs[i].text for i in (3, 4))
    assert passages[0].text == paragraphs[1].text


def test_bad_files_are_skipped_one_warning_each(tmp_path, caplog):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.txt").write_text("Good\n\nThe good file is read.\n", encoding="utf-8")
    make_pdf(corpus / "locked.pdf", ["Secret text."], password="secret")
    make_pdf(corpus / "blank.pdf", [""])
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not a pdf")
    (corpus / "broken.docx").write_bytes(b"PK\x03\x04 not really a zip")
    make_docx(corpus / "empty.docx", [])
    (corpus / "empty.html").write_text("<html><script>x()</script></html>", encoding="utf-8")
    (corpus / "empty.md").write_text("  \n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="qa.documents"):
        report = load_corpus(corpus)
    assert [d.source for d in report.documents] == ["good.txt"]
    reasons = dict(report.skipped)
    assert reasons == {
        "blank.pdf": "no extractable text in the PDF (scanned images?)",
        "broken.docx": reasons["broken.docx"],
        "broken.pdf": reasons["broken.pdf"],
        "empty.docx": "empty",
        "empty.html": "empty",
        "empty.md": "empty",
        "locked.pdf": "password-protected PDF",
    }
    assert reasons["broken.docx"].startswith("not a readable .docx (damaged or password-protected")
    assert reasons["broken.pdf"].startswith("damaged or unsupported PDF")
    warnings = [r.getMessage() for r in caplog.records if r.name == "qa.documents"]
    assert sorted(warnings) == sorted(f"skipped {s}: {r}" for s, r in report.skipped)


def test_unsupported_suffix_is_not_listed(tmp_path):
    (tmp_path / "a.png").write_bytes(b"\x89PNG")
    (tmp_path / "b.TXT").write_text("x", encoding="utf-8")
    (tmp_path / ".hidden.txt").write_text("x", encoding="utf-8")
    assert [p.name for p in list_files(tmp_path)] == ["b.TXT"]
    with pytest.raises(Unreadable, match="unsupported file type '.png'"):
        read_document(tmp_path / "a.png")


@pytest.fixture
def mixed(settings, fake_embedder, monkeypatch):
    corpus = settings.corpus_dir
    make_pdf(corpus / "light.pdf", PDF_PAGES)
    make_docx(corpus / "rules.docx", DOCX_BLOCKS)
    (corpus / "mill.html").write_text(HTML, encoding="utf-8")
    make_pdf(corpus / "locked.pdf", ["Secret text."], password="secret")
    patch_embedder(monkeypatch, fake_embedder)
    monkeypatch.setenv("QA_CORPUS_DIR", str(settings.corpus_dir))
    monkeypatch.setenv("QA_INDEX_DIR", str(settings.index_dir))
    monkeypatch.setenv("QA_MODEL", fake_embedder.name)
    return settings


def test_mixed_corpus_end_to_end(mixed, fake_embedder, capsys):
    assert main(["index", "-q"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Indexed 5 files: ")
    assert "Skipped 1 file:\n  locked.pdf: password-protected PDF" in out
    retriever = Retriever.load(mixed.index_dir, embedder=fake_embedder)
    assert retriever.sources() == ["garden.txt", "light.pdf", "mill.html", "rules.docx", "sub/boats.md"]
    hit = retriever.search("keeper log passing ship storms red ink", k=1)[0]
    assert (hit.source, hit.page, hit.citation) == ("light.pdf", 2, "light.pdf p.2")
    # Text output names the page; JSON keeps every key of a passage and adds page/locator.
    assert main(["ask", "keeper log passing ship storms red ink", "-k", "1"]) == 0
    text = capsys.readouterr().out
    assert "[1] light.pdf p.2" in text and "(light.pdf p.2)" in text.splitlines()[0]
    assert main(["ask", "keeper log passing ship storms red ink", "-k", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    first = doc["passages"][0]
    for key in ("rank", "score", "text", "source", "section", "start_line", "end_line", "start_char", "end_char"):
        assert key in first
    assert (first["page"], first["locator"], first["text"]) == (2, "p.2", PDF_PAGES[1])
    assert doc["answer"]["locator"] == "p.2"
    hit = retriever.search("nets dried quay fishing pier dark", k=1)[0]
    assert (hit.source, hit.section, hit.citation) == ("rules.docx", "Harbour Rules › Fishing", "rules.docx ¶4-5")
    hit = retriever.search("mill grinds wheat rye", k=1, sources=["*.html"])[0]
    assert (hit.citation, hit.section) == ("mill.html:L10-L11", "The Mill")


def test_pdf_change_is_re_embedded_alone(mixed, fake_embedder):
    build_index(mixed, embedder=fake_embedder)
    make_pdf(mixed.corpus_dir / "light.pdf", PDF_PAGES + ["A third page about the foghorn."])
    fake_embedder.batches.clear()
    report = build_index(mixed, embedder=fake_embedder)
    assert report.changed == ["light.pdf"] and report.reused == 4
    assert "A third page about the foghorn." in fake_embedder.embedded
    assert not any("Harbour" in t or "roses" in t for t in fake_embedder.embedded)
    hit = Retriever.load(mixed.index_dir, embedder=fake_embedder).search("foghorn third page", k=1)[0]
    assert hit.citation == "light.pdf p.3"


def test_answer_sentence_cites_its_own_paragraph_even_after_a_reuse(mixed, fake_embedder):
    build_index(mixed, embedder=fake_embedder)

    def ask():
        retriever = Retriever.load(mixed.index_dir, embedder=fake_embedder)
        return retriever.ask("No fishing from the pier after dark", k=1)

    answer = ask()
    assert answer.passages[0].citation == "rules.docx ¶4-5"  # the passage spans two paragraphs
    assert (answer.answer.text, answer.answer.locator) == ("No fishing from the pier after dark.", "¶5")
    assert cite(answer.answer) == "rules.docx ¶5"
    # An update that reuses rules.docx unchanged keeps its paragraph offsets.
    (mixed.corpus_dir / "garden.txt").write_text("The garden gate is green.\n", encoding="utf-8")
    assert build_index(mixed, embedder=fake_embedder).reused == 4
    assert ask().answer.locator == "¶5"


def test_unit_locator_names_pages_and_paragraphs():
    starts = [0, 10, 25]
    assert unit_locator("page", starts, 0, 5) == "p.1"
    assert unit_locator("page", starts, 5, 12) == "pp.1-2"
    assert unit_locator("paragraph", starts, 10, 25) == "¶2"  # end is exclusive
    assert unit_locator("paragraph", starts, 12, 30) == "¶2-3"
    assert unit_locator("", [], 3, 4) == ""
