"""Chunking: exact spans, right line numbers, sections, sentence rules, sizes and overlap."""

from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from qa.chunking import chunk_document, find_headings, find_sections, rooted, split_sentences
from qa.config import ChunkSettings
from qa.schema import Document

ROOT = Path(__file__).resolve().parents[2]


def _doc(text: str, source: str = "doc.txt") -> Document:
    return Document(source=source, text=text, format="md" if source.endswith(".md") else "txt")


def _check_exact(document: Document, passages) -> None:
    lines = document.text.split("\n")
    for p in passages:
        assert p.text == document.text[p.start_char : p.end_char]
        assert p.text == p.text.strip() and p.text
        # start_line/end_line are the 1-based lines holding the first and last character.
        assert document.text.count("\n", 0, p.start_char) + 1 == p.start_line
        assert document.text.count("\n", 0, p.end_char - 1) + 1 == p.end_line
        assert p.text.split("\n")[0] in lines[p.start_line - 1]
        assert p.text.split("\n")[-1] in lines[p.end_line - 1]


def test_default_corpus_passages_are_exact_spans_in_sections():
    text = (ROOT / "corpus" / "iranian-resistance-pmoi-ncri.txt").read_bytes().decode("utf-8")
    document = _doc(text, "iranian-resistance-pmoi-ncri.txt")
    passages = chunk_document(document)
    _check_exact(document, passages)
    by_section = {p.section for p in passages}
    assert {"", "PMOI views", "President-elect of the NCRI", "Camp Ashraf", "Relocation outside Iraq"} <= by_section
    assert "Iranian Mujahedin or the People" not in " ".join(by_section)
    rajavi = [p for p in passages if "Maryam Rajavi" in p.text]
    assert [(p.section, p.start_line) for p in rajavi] == [("President-elect of the NCRI", 16)]
    assert rajavi[0].text.startswith("The president-elect of the NCRI is Mrs. Maryam Rajavi.")
    assert all(len(p.text.split()) <= 120 * 1.2 for p in passages)


def test_sections_of_plain_text_need_blank_lines_around_a_short_line():
    text = "Intro line one.\n\nHeading A\n\nBody of a. More.\nNot heading\nbecause wrapped.\n\nB: ends in colon:\n\nLast."
    sections = find_sections(_doc(text))
    assert [s.title for s in sections] == ["", "Heading A"]
    assert text[sections[1].start : sections[1].end].strip().startswith("Body of a.")


def test_heading_paths_are_rooted_at_a_title_they_do_not_name():
    assert rooted("DELETE", "1. Overview › 1.1. Limits") == "DELETE › 1. Overview › 1.1. Limits"
    assert rooted("DELETE", "") == "DELETE"  # text before the first heading
    # the first heading is the title, in other words or with a site's suffix on the title
    assert rooted("re — Regular expressions — Python 3.11 docs", "re — Regular expressions¶ › Flags") == (
        "re — Regular expressions¶ › Flags")
    assert rooted("CREATE TABLE", "SQL Commands › CREATE TABLE › Notes") == "SQL Commands › CREATE TABLE › Notes"
    assert rooted("Pointer Passing Interfaces", "3. The New Pointer-Passing Interfaces") == (
        "3. The New Pointer-Passing Interfaces")  # punctuation does not hide the words
    assert rooted("INSERT", "Parameters › Inserting") == "INSERT › Parameters › Inserting"  # whole words
    assert rooted("", "1. Overview") == "1. Overview" and rooted(" — ", "1. Overview") == "1. Overview"


def test_html_sections_start_at_the_title_and_passages_stay_exact_spans():
    text = "Intro before any heading, about deleting rows.\nOverview\nThe DELETE command removes rows."
    a = text.index("Overview")
    document = Document(source="lang_delete.html", text=text, format="html", title="DELETE",
                        headings=((a, a + len("Overview"), 2, "1. Overview"),))
    passages = chunk_document(document)
    assert [p.section for p in passages] == ["DELETE", "DELETE › 1. Overview"]
    _check_exact(document, passages)
    plain = chunk_document(document, ChunkSettings(title_root=False))
    assert [p.section for p in plain] == ["", "1. Overview"]
    assert [(p.start_char, p.end_char, p.text) for p in plain] == [(p.start_char, p.end_char, p.text) for p in passages]
    assert ChunkSettings().as_dict()["title_root"] is True  # recorded in the manifest: a change rebuilds


def test_markdown_sections_nest_and_ignore_code_fences():
    text = (ROOT / "tests" / "data" / "sub" / "boats.md").read_text(encoding="utf-8")
    document = _doc(text, "sub/boats.md")
    titles = [s.title for s in find_sections(document)]
    assert titles == ["Boats of the harbour", "Boats of the harbour › Repairs", "Boats of the harbour › Racing"]
    passages = chunk_document(document)
    _check_exact(document, passages)
    racing = [p for p in passages if p.section.endswith("Racing")]
    assert racing[0].text.startswith("```")  # the fenced block is body text, not a heading
    assert racing[-1].text.endswith("silver cup for a year.")


def test_sentence_split_respects_abbreviations_initials_and_lowercase_continuations():
    text = "Mrs. Rajavi met Dr. Ward in Washington D.C. on Monday. J. Smith came too! Did he? yes, approx. five."
    spans = [text[a:b] for a, b in split_sentences(text)]
    assert spans == [
        "Mrs. Rajavi met Dr. Ward in Washington D.C. on Monday.",
        "J. Smith came too!",
        "Did he? yes, approx. five.",
    ]


def test_sentence_split_keeps_a_k_a_and_n_b_inside_the_sentence():
    # Python's glossary: "Benevolent Dictator For Life, a.k.a. Guido van Rossum" was cut in two
    text = "BDFL: Benevolent Dictator For Life, a.k.a. Guido van Rossum. N.B. Every record is logged. See cf. Appendix A."
    assert [text[a:b] for a, b in split_sentences(text)] == [
        "BDFL: Benevolent Dictator For Life, a.k.a. Guido van Rossum.",
        "N.B. Every record is logged.",
        "See cf. Appendix A.",
    ]


def test_sentences_break_at_paragraphs_and_list_items():
    text = "First para without period\n\nSecond para.\n- item one\n- item two"
    assert [text[a:b] for a, b in split_sentences(text)] == [
        "First para without period",
        "Second para.",
        "- item one",
        "- item two",
    ]


def test_chunks_respect_size_and_overlap_one_sentence():
    sentence = "word " * 29 + "end."  # 30 words
    text = " ".join(f"S{i} " + sentence for i in range(10))
    document = _doc(text)
    passages = chunk_document(document, ChunkSettings(min_words=40, max_words=120, overlap_sentences=1))
    _check_exact(document, passages)
    sizes = [len(p.text.split()) for p in passages]
    assert all(40 <= s <= 124 for s in sizes), sizes
    for before, after in zip(passages, passages[1:]):
        last_sentence = before.text[before.text.rfind("S") :]
        assert after.text.startswith(last_sentence)  # one-sentence overlap
        assert after.start_char < before.end_char
    assert passages[0].text.startswith("S0 ") and passages[-1].text.endswith("end.") and "S9 " in passages[-1].text


def test_never_cuts_a_sentence_even_a_long_one():
    long_sentence = " ".join(["longword"] * 200) + "."
    text = f"Short one. {long_sentence} Tail sentence."
    passages = chunk_document(_doc(text))
    assert any(long_sentence in p.text for p in passages)


def test_crlf_and_unicode_offsets_stay_exact():
    text = "Título\r\n\r\nÉté à Genève — “quoted”.\r\nSecond line here. 😀 Emoji sentence.\r\n"
    document = _doc(text)
    passages = chunk_document(document)
    _check_exact(document, passages)
    assert passages[0].section == "Título"


_words = st.sampled_from(["alpha", "beta", "Gamma", "delta", "Mrs.", "e.g.", "x", "1988", "naïve", "“q”", "end"])
_sentence = st.lists(_words, min_size=1, max_size=25).map(" ".join)
_endings = st.sampled_from([".", "!", "?", "", ".”", ")."])
_seps = st.sampled_from([" ", "  ", "\n", "\n\n", "\r\n", "\n\n\n", " \n\t"])


@st.composite
def _texts(draw):
    parts = []
    for _ in range(draw(st.integers(1, 40))):
        if draw(st.integers(0, 9)) == 0:
            parts.append(draw(st.sampled_from(["Heading", "## Sub heading", "A Title Here"])))
            parts.append("\n\n")
        parts.append(draw(_sentence) + draw(_endings))
        parts.append(draw(_seps))
    return "".join(parts)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_texts(), fmt=st.sampled_from(["doc.txt", "doc.md"]), max_words=st.integers(5, 80))
def test_property_every_passage_is_an_exact_span_with_right_lines(text, fmt, max_words):
    document = _doc(text, fmt)
    settings_ = ChunkSettings(min_words=max_words // 3, max_words=max_words, overlap_sentences=1)
    passages = chunk_document(document, settings_)
    _check_exact(document, passages)
    # Every non-blank character is in some passage, or on a heading line.
    covered = [False] * len(text)
    for p in passages:
        covered[p.start_char : p.end_char] = [True] * (p.end_char - p.start_char)
    for start, end, _ in find_headings(document):
        covered[start:end] = [True] * (end - start)
    assert all(c or text[i].isspace() for i, c in enumerate(covered))
