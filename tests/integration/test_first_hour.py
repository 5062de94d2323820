"""Issue 15, a new user's first hour: each rough edge found, shown fixed."""

from __future__ import annotations

import html
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import qa.build
from qa.build import build_index, ensure_index
from qa.frontends.cli import main
from qa.retriever import Retriever
from qa.config import Settings
from qa.documents import read_document
from qa.errors import CorpusEmpty, IndexMismatch, ModelUnavailable

ROOT = Path(__file__).resolve().parents[2]


from conftest import patch_embedder  # noqa: E402
from test_cli import fake_env  # noqa: E402,F401  (the CLI tests' environment: FakeEmbedder index)


# --- 2: a port in use ----------------------------------------------------------------------


def test_serve_on_a_taken_port_says_so_before_claiming_to_serve(fake_env, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"Port {port} " in err and "--port" in err and "PORT=" in err
    assert "web chat on" not in err and "GRADIO_SERVER_PORT" not in err
    assert not (fake_env.index_dir / "CURRENT").exists()  # refused before any index work


def test_make_run_takes_host_and_port():
    makefile = (ROOT / "Makefile").read_text()
    assert "qa serve --host $(HOST) --port $(PORT)" in makefile
    readme = (ROOT / "README.md").read_text()
    setup = readme[readme.index("## Set up") : readme.index("## Ask in the terminal")]
    assert "make run HOST=" in setup and "PORT=" in setup


# --- 4: `| head` -------------------------------------------------------------------------


def test_json_into_a_closed_pipe_ends_quietly(settings, fake_embedder, tmp_path):
    build_index(settings, embedder=fake_embedder)
    script = (
        "import sys; sys.path.insert(0, 'tests'); from conftest import FakeEmbedder; import qa.build, qa.retriever; "
        "qa.build.get_embedder = qa.retriever.get_embedder = lambda name=None: FakeEmbedder(); from qa.frontends.cli import main; "
        "sys.exit(main(['ask', 'roses watered', '--json', '-k', '20']))"
    )
    env = {**os.environ, "QA_CORPUS_DIR": str(settings.corpus_dir), "QA_INDEX_DIR": str(settings.index_dir),
           "QA_MODEL": fake_embedder.name}
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # like `head -c 100` having read its fill
    err = proc.stderr.read().decode()
    assert proc.wait() == 0
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_ask_json_is_one_line(fake_env, capsys):
    assert main(["ask", "When are the roses watered?", "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and json.loads(out)["found"] is True


# --- 10: a model that is not there -------------------------------------------------------


def test_missing_model_is_named_before_any_build(settings, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("QA_CORPUS_DIR", str(settings.corpus_dir))
    monkeypatch.setenv("QA_INDEX_DIR", str(settings.index_dir))
    assert main(["index", "--model", "no-such-model"]) == 1
    err = capsys.readouterr().err
    assert "'no-such-model' is not on this machine" in err and "--model" in err
    assert "internet" not in err and "embedding" not in err  # no progress bar, no hub text
    with pytest.raises(ModelUnavailable):
        ensure_index(Settings(corpus_dir=settings.corpus_dir, index_dir=settings.index_dir, model="no-such-model"))


def test_model_mismatch_names_the_flag_or_the_variable(settings, fake_embedder):
    build_index(settings, embedder=fake_embedder)
    by_flag = Settings.from_env(index_dir=settings.index_dir, corpus_dir=settings.corpus_dir, model="other")
    with pytest.raises(IndexMismatch) as flag:
        ensure_index(by_flag, embedder=fake_embedder)
    assert "(--model)" in str(flag.value) and "qa index --model other" in str(flag.value)
    assert "QA_MODEL" not in str(flag.value)
    by_env = Settings.from_env({"QA_MODEL": "other", "QA_INDEX_DIR": str(settings.index_dir)})
    with pytest.raises(IndexMismatch) as env:
        Retriever.load(by_env.index_dir, embedder=None, model=None) if False else ensure_index(by_env, embedder=fake_embedder)
    assert "set QA_MODEL=fake-embedder" in str(env.value)


# --- 11: the rest -------------------------------------------------------------------------


def test_failed_first_command_leaves_no_index_folder(tmp_path, fake_embedder):
    index = tmp_path / "ix"
    with pytest.raises(CorpusEmpty):
        build_index(Settings(corpus_dir=tmp_path / "nope", index_dir=index), embedder=fake_embedder)
    assert not index.exists()


def test_corpus_that_is_a_file_is_named_as_such(tmp_path, fake_embedder):
    file = tmp_path / "notes.txt"
    file.write_text("Some notes.\n")
    with pytest.raises(CorpusEmpty, match="is a file; --corpus"):
        build_index(Settings(corpus_dir=file, index_dir=tmp_path / "ix"), embedder=fake_embedder)


def test_latin1_text_is_decoded_and_cited_exactly(settings, fake_embedder):
    raw = "Caf\xe9 cr\xe8me is served at n\xe4chste Stunde, every afternoon in the garden.\n"
    (settings.corpus_dir / "latin1.txt").write_bytes(raw.encode("latin-1"))
    report = build_index(settings, embedder=fake_embedder)
    assert "latin1.txt" not in dict(report.skipped)
    hit = Retriever.load(settings.index_dir, embedder=fake_embedder).search("café crème", 1, sources=["latin1.txt"])[0]
    assert hit.text == raw[hit.start_char : hit.end_char] and "Café crème" in hit.text
    assert read_document(settings.corpus_dir / "latin1.txt").text == raw


def test_status_says_one_file(tmp_path, fake_embedder, monkeypatch, capsys):
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "a.txt").write_text("The ferry leaves at noon from the harbour. " * 5)
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "ix", model=fake_embedder.name)
    build_index(settings, embedder=fake_embedder)
    monkeypatch.setenv("QA_CORPUS_DIR", str(corpus))
    monkeypatch.setenv("QA_INDEX_DIR", str(settings.index_dir))
    monkeypatch.setenv("QA_MODEL", fake_embedder.name)
    assert main(["status"]) == 0
    assert " from 1 file\n" in capsys.readouterr().out


def test_model_export_is_shared_by_index_folders(tmp_path, monkeypatch):
    from qa.build import models_cache

    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))
    one = Settings.from_env(index_dir=tmp_path / "one")
    two = Settings.from_env(index_dir=tmp_path / "two")
    assert models_cache(one) == models_cache(two) == tmp_path / "cache" / "models"


# --- 6, 7, 8 and the scores: what a reader sees ------------------------------------------

WRAPPED = (
    "Workshop Safety\n"
    "\n"
    "Fire\n"
    "\n"
    "Oily\n"
    "rags must be kept in a closed metal can, because they can catch fire on their own while\n"
    "drying. Empty the can every evening.\n"
    "- never leave rags in a pile\n"
    "- never use water on an oil fire\n"
    "\n"
    "Volunteer Handbook of the Harbour Street Community Workshop and Tool Library\n"
    "\n"
    "Volunteers sign in at the front desk and wear a badge at all times while on the premises.\n"
)


@pytest.fixture
def wrapped(tmp_path, fake_embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "safety.txt").write_text(WRAPPED)
    (corpus / "boats.md").write_text("# Boats\n\n## Mooring\n\nBoats moor at the north quay in summer.\n")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "ix", model=fake_embedder.name)
    build_index(settings, embedder=fake_embedder)
    return Retriever.load(settings.index_dir, embedder=fake_embedder)


def test_displayed_text_flows_instead_of_keeping_source_line_breaks(wrapped):
    from qa.render import render_html, render_text

    answer = wrapped.ask("Where are oily rags kept?", 1, sources=["safety.txt"])
    text = render_text(answer, width=60)
    lines = text.splitlines()
    assert all(len(line) <= 60 for line in lines)
    assert "Oily rags must be kept" in text  # not "Oily" alone on its line
    assert "    - never leave rags in a pile" in lines  # list items keep their own line
    page = render_html(answer)
    assert "Oily rags must be kept" in page and "Oily<br>" not in page
    assert "<br>- never" in page.replace("&#45;", "-")


def test_scores_are_folded_under_why_this_passage(wrapped):
    from qa.render import render_html, render_text

    answer = wrapped.ask("Where are oily rags kept?", 2)
    assert "score " not in render_text(answer) and "dense " not in render_text(answer)
    assert "dense " in render_text(answer, scores=True)
    page = render_html(answer)
    assert page.count('<details class="qa-why"><summary>why this passage</summary>') == 2
    assert page.index("qa-score") > page.index("why this passage")


def test_not_found_says_which_files_were_searched(wrapped):
    from qa.render import render_html, render_text

    answer = wrapped.ask("zebra quantum violin", 2, sources=["boats.md"])
    assert not answer.found
    said = render_text(answer, scope=["boats.md"]).splitlines()[0]
    assert said.startswith("Not found in the chosen document (boats.md): no passage there clearly answers this question")
    assert said.endswith(". Leave out --source to search every file.")
    assert "chosen document (boats.md)" in html.unescape(render_html(answer, scope=["boats.md"]))
    assert render_text(answer).startswith("Not found: no passage of the corpus clearly answers")


def test_generated_examples_are_short_questions_about_sections(wrapped):
    from qa.frontends import web

    examples = web._section_examples(wrapped)
    # boats.md first (corpus order); the long handbook title is left out
    assert examples == ["What does it say about mooring?", "What does it say about fire?"]
    assert web._empty_question_reply(examples).count("What does it say about mooring?") == 1
    assert "NCRI" not in web._empty_question_reply([])


# --- 3: PDF headings ----------------------------------------------------------------------


def make_styled_pdf(path: Path, blocks: list[tuple[str, int, str]]) -> Path:
    """A PDF of (style, size, text) blocks: "B" bold, "" regular."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    for style, size, text in blocks:
        pdf.set_font("Helvetica", style, size)
        pdf.set_x(pdf.l_margin)
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path


TRIAL = [
    ("B", 18, "Tomato Trial 2025"),
    ("", 11, "We grew six varieties of tomato in the south beds from April to September, in the same soil."),
    ("B", 14, "Results: yield and flavour"),
    ("", 11, "Sungold gave the highest yield of all the varieties and the best flavour by far. "
             "Moneymaker came second on yield but was bland."),
    ("B", 11, "Pests"),
    ("", 11, "Aphids appeared in June. Spray them with soapy water, and never use vinegar on the leaves."),
]


def test_pdf_headings_become_sections(tmp_path, fake_embedder):
    from qa.chunking import chunk_document

    path = make_styled_pdf(tmp_path / "trial.pdf", TRIAL)
    doc = read_document(path, "trial.pdf")
    titles = [(level, title) for _, _, level, title in doc.headings]
    assert titles == [(1, "Tomato Trial 2025"), (2, "Results: yield and flavour"), (3, "Pests")]
    for a, b, _, title in doc.headings:
        assert doc.text[a:b] == title
    sections = {p.section: p.text for p in chunk_document(doc)}
    results = sections["Tomato Trial 2025 › Results: yield and flavour"]
    assert results.startswith("Sungold gave") and "Results:" not in results
    assert sections["Tomato Trial 2025 › Results: yield and flavour › Pests"].startswith("Aphids appeared")


def test_pdf_without_styled_lines_keeps_no_headings(tmp_path):
    path = make_styled_pdf(tmp_path / "plain.pdf", [("", 12, "Just one paragraph of body text, nothing more.")])
    assert read_document(path, "plain.pdf").headings is None


# --- 9: HTML boilerplate is not indexed -------------------------------------------------

BOILERPLATE = """<!doctype html>
<html><head><title>Club</title>
<style>
.visually-gone, #cookie { display: none; }
.shown { color: red; }
@media print { .noprint { display: none } }
</style></head>
<body>
<nav><ul><li><a href="/">Home</a><li><a href="/news">News</a></ul></nav>
<div role="navigation">Skip to content</div>
<h1>Opening hours</h1>
<p class="shown">The club opens at nine on weekdays.</p>
<div hidden><p>Old hours: closed on Mondays.</p><div>nested secret</div></div>
<p>Members bring their own towels.<span aria-hidden="true"> ICON-TEXT</span></p>
<p class="visually-gone">Tracking pixel text.</p>
<div id="cookie">We use cookies.</div>
<p style="display:none">Inline hidden words.</p>
<p class="noprint">Printed pages leave this out, screens show it.</p>
</body></html>
"""


def test_html_navigation_and_hidden_text_are_not_indexed(tmp_path):
    path = tmp_path / "club.html"
    path.write_text(BOILERPLATE)
    doc = read_document(path, "club.html")
    for gone in ("Home", "News", "Skip to content", "Old hours", "nested secret", "ICON-TEXT", "Tracking",
                 "cookies", "Inline hidden"):
        assert gone not in doc.text, gone
    for kept in ("The club opens at nine on weekdays.", "Members bring their own towels.", "screens show it"):
        assert kept in doc.text
    assert doc.text.count("\n") == BOILERPLATE.count("\n")  # lines still the file's lines
    line = BOILERPLATE.splitlines().index('<p class="shown">The club opens at nine on weekdays.</p>')
    assert "The club opens at nine" in doc.text.split("\n")[line]
    assert [t for *_, t in doc.headings] == ["Opening hours"]


# --- 9: the viewer matches its citations ---------------------------------------------------


@pytest.fixture(scope="module")
def viewer_server(tmp_path_factory):
    """A served index of a DOCX, a two-page PDF and a text file (FakeEmbedder)."""
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "unit"))
    from conftest import FakeEmbedder
    from test_documents import make_docx, make_pdf
    from test_web import start

    base = tmp_path_factory.mktemp("viewer")
    corpus = base / "corpus"
    corpus.mkdir()
    make_docx(corpus / "rules.docx", [("h1", "Harbour Rules"), ("p", "Boats must be registered."),
                                      ("h2", "Fishing"), ("p", "Fishing from the pier is allowed at night."),
                                      ("p", "Nets are not allowed anywhere in the harbour.")])
    make_pdf(corpus / "report.pdf", ["The first page talks about sails and ropes.",
                                     "The second page says lighthouse keepers work in shifts of twelve hours."])
    (corpus / "notes.txt").write_text("Plain notes about the harbour cafe and its opening hours.\n")
    settings = Settings(corpus_dir=corpus, index_dir=base / "index", model=FakeEmbedder.name)
    embedder = FakeEmbedder()
    build_index(settings, embedder=embedder)
    retriever = Retriever.load(settings.index_dir, embedder=embedder)
    demo, url = start(settings, retriever)
    yield url, retriever, settings
    demo.close()


def test_docx_citation_opens_its_paragraphs(viewer_server):
    import httpx

    from qa.frontends import web

    url, retriever, _ = viewer_server
    hit = retriever.ask("Nets are not allowed anywhere in the harbour", 1, sources=["rules.docx"]).passages[0]
    assert hit.locator == "¶4-5"  # the Fishing section: two paragraphs
    link = web.source_url(hit)
    assert link.endswith("#P4")
    page = httpx.get(url + link.split("#")[0]).text
    assert "<title>rules.docx · ¶4-5</title>" in page and "¶4-5 highlighted" in page and "line 1" not in page
    assert '<div class="para hl" id="P4">' in page and '<div class="para hl" id="P5">' in page
    assert '<div class="para" id="P3">' in page and page.count('class="para hl"') == 2
    assert "<mark>" in page  # the supporting sentence


def test_pdf_citation_shows_page_breaks_and_numbers(viewer_server):
    import httpx

    from qa.frontends import web

    url, retriever, _ = viewer_server
    hit = retriever.search("lighthouse keepers shifts", 1, sources=["report.pdf"])[0]
    assert hit.locator == "p.2"
    page = httpx.get(url + web.source_url(hit).split("#")[0]).text
    assert '<div class="page-break" id="page-1">Page 1</div>' in page
    assert '<div class="page-break" id="page-2">Page 2</div>' in page
    assert page.index("id=\"page-2\"") < page.index("lighthouse keepers")
    assert "p.2 highlighted" in page


def test_viewer_links_back_and_serves_the_original(viewer_server):
    import httpx

    url, _, settings = viewer_server
    page = httpx.get(url + "source", params={"file": "rules.docx", "lines": "1"}).text
    assert '<a href="./" id="back">' in page
    assert 'href="source/raw?file=rules.docx"' in page
    raw = httpx.get(url + "source/raw", params={"file": "rules.docx"})
    assert raw.status_code == 200 and raw.content == (settings.corpus_dir / "rules.docx").read_bytes()
    assert raw.headers["content-disposition"] == "attachment; filename*=UTF-8''rules.docx"
    for bad in ("../index/CURRENT", "/etc/passwd", "nope.txt"):
        assert httpx.get(url + "source/raw", params={"file": bad}).status_code == 404


# --- 11: the README's Python example and the checkout folder --------------------------------


def test_package_is_found_from_the_folder_that_holds_the_checkout(tmp_path):
    """Beside a checkout named qa/, `import qa` found that folder (a namespace package without
    `retrieve`). The compat editable install puts the checkout on sys.path, where the real
    package wins; this runs Python the way that install does."""
    (tmp_path / "qa" / "qa").mkdir(parents=True)  # the checkout folder, seen from its parent
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", "import qa; print(callable(qa.retrieve), qa.__file__)"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout
    assert out.startswith("True ") and out.strip().endswith("qa/__init__.py")
    assert "editable_mode=compat" in (ROOT / "Makefile").read_text()


def test_readme_python_example_for_another_corpus_runs(tmp_path, fake_embedder, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    block = readme.split("Your own documents, in a folder of their own")[1].split("```python\n")[1].split("```")[0]
    assert 'qa.Settings(corpus_dir=Path("my-notes")' in block
    notes = tmp_path / "my-notes"
    notes.mkdir()
    (notes / "minutes.txt").write_text("We decided about the budget: the budget for the roof is 4,000 euros.\n")
    monkeypatch.chdir(tmp_path)
    patch_embedder(monkeypatch, fake_embedder)
    monkeypatch.setenv("QA_MODEL", fake_embedder.name)
    block = block.replace('qa.Settings(corpus_dir=Path("my-notes"), index_dir=Path("my-notes-index"))',
                          'qa.Settings(corpus_dir=Path("my-notes"), index_dir=Path("my-notes-index"), model="fake-embedder")')
    printed = []
    exec(compile(block, "README", "exec"), {"print": lambda *a: printed.append(a)})
    assert printed == [("We decided about the budget: the budget for the roof is 4,000 euros.", "minutes.txt:L1")]
    assert (tmp_path / "my-notes-index" / "CURRENT").exists()


def test_web_assets_are_package_files():
    """The page's CSS, scripts and HTML live in qa/static/ and ship with the package."""
    import tomllib

    from qa.frontends import web

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["qa"]
    assert data == ["static/*"]
    names = {p.name for p in (ROOT / "qa" / "static").iterdir()}
    assert {"chat.css", "scroll.js", "head.html", "copy.js", "viewer.html", "viewer.css", "library.css",
            "library.js"} <= names
    assert web.CSS == (ROOT / "qa" / "static" / "chat.css").read_text()
    assert 'CSS = """' not in (ROOT / "qa" / "frontends" / "web.py").read_text()


def test_empty_question_message_is_not_about_the_bundled_corpus(fake_env, capsys):
    assert main(["ask", "  "]) == 2
    err = capsys.readouterr().err
    assert "question is empty" in err and "NCRI" not in err
