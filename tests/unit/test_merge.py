"""Overlapping passages of one place are shown once (qa.search.merge), as an exact span of the file."""

from __future__ import annotations

import numpy as np

from qa.chunking import chunk_document
from qa.config import ChunkSettings
from qa.search.merge import MAX_MERGED, merge_ranked, merged_passage
from qa.schema import Passage

TEXT = " ".join(f"Sentence number {i} says something about topic {i % 7} in plain words here." for i in range(200))


def _doc(tmp_path):
    from qa.documents import read_document

    path = tmp_path / "a.txt"
    path.write_text(TEXT, encoding="utf-8")
    return read_document(path, "a.txt")


def test_overlapping_neighbours_merge_into_one_exact_span(tmp_path):
    doc = _doc(tmp_path)
    ps = chunk_document(doc, ChunkSettings(min_words=20, max_words=40, overlap_sentences=1))
    assert len(ps) > 6 and ps[1].start_char < ps[0].end_char  # neighbours overlap by a sentence
    ranked = [ps[2], ps[5], ps[1], ps[3]]  # 1 and 3 overlap 2; 5 stands apart
    groups = merge_ranked(ranked, k=5)
    assert groups == [[0, 2, 3], [1]]
    merged = merged_passage([ranked[i] for i in groups[0]])
    assert (merged.start_char, merged.end_char) == (ps[1].start_char, ps[3].end_char)
    assert merged.text == doc.text[merged.start_char : merged.end_char]
    assert (merged.start_line, merged.section) == (ps[1].start_line, ps[2].section)


def test_a_full_group_drops_repeats_and_k_caps_the_results(tmp_path):
    ps = chunk_document(_doc(tmp_path), ChunkSettings(min_words=20, max_words=40, overlap_sentences=1))
    ranked = [ps[3], ps[2], ps[4], ps[1], ps[5], ps[9], ps[12]]
    groups = merge_ranked(ranked, k=2)
    assert len(groups[0]) == MAX_MERGED and groups[0][0] == 0
    # ps[1] and ps[5] overlap the full group by one sentence of several: their own results, but k=2
    assert groups[1] == [3] and len(groups) == 2


def test_other_files_sections_or_pages_never_merge():
    a = Passage(text="abc def", source="a.txt", section="S", start_line=1, end_line=1, start_char=0, end_char=7)
    b = Passage(text="def ghi", source="b.txt", section="S", start_line=1, end_line=1, start_char=4, end_char=11)
    c = Passage(text="def ghi", source="a.txt", section="T", start_line=1, end_line=1, start_char=4, end_char=11)
    assert merge_ranked([a, b, c], k=5) == [[0], [1], [2]]
    d = Passage(text="def ghi", source="a.txt", section="S", start_line=1, end_line=2, start_char=4, end_char=11)
    assert merge_ranked([a, d], k=5) == [[0, 1]]
    assert merged_passage([a, d]).text == "abc def ghi"


def test_search_shows_each_place_once_with_exact_spans(tmp_path, fake_embedder):
    from qa.api import Retriever, build_index
    from qa.config import Settings

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text(TEXT, encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model=fake_embedder.name)
    build_index(settings, embedder=fake_embedder)
    retriever = Retriever.load(settings.index_dir, embedder=fake_embedder)
    answer = retriever.ask("something about topic 3 in plain words", k=5)
    hits = answer.passages
    assert len(hits) == 5 and [h.rank for h in hits] == [1, 2, 3, 4, 5]
    for i, a in enumerate(hits):
        assert a.text == TEXT[a.start_char : a.end_char]
        assert a.start_char <= a.sentence_start < a.sentence_end <= a.end_char
        for b in hits[i + 1 :]:
            assert b.end_char <= a.start_char or a.end_char <= b.start_char  # no text shown twice
    assert any(len(h.text) > 400 for h in hits)  # neighbours were merged
    from qa.search import SearchParams

    plain = Retriever(retriever.reader, fake_embedder, SearchParams(merge=False)).search(
        "something about topic 3 in plain words", k=5)
    assert any(b.start_char < a.end_char and a.start_char < b.end_char for a in plain for b in plain if a is not b)


def test_trim_cuts_what_a_better_result_shows_and_stays_exact(tmp_path):
    from qa.search.merge import trim_shown

    doc = _doc(tmp_path)
    ps = chunk_document(doc, ChunkSettings(min_words=20, max_words=40, overlap_sentences=1))
    first, later, before = ps[3], ps[4], ps[2]  # 4 starts with 3's last sentence; 2 ends with 3's first
    out = trim_shown([first, later, before, ps[9]])
    assert out[0] == first and out[3] == ps[9]
    assert out[1].start_char >= first.end_char and out[1].end_char == later.end_char
    assert out[2].end_char <= first.start_char and out[2].start_char == before.start_char
    for p in out:
        assert p.text == doc.text[p.start_char : p.end_char] and p.text == p.text.strip()


class _Rows:
    """A reader of ranked passages that can say each row's source from memory (or not)."""

    def __init__(self, passages, numbers: bool):
        self.list = passages
        self.read = 0
        if numbers:
            names = {}
            self.source_numbers = lambda rows: np.array([names.setdefault(passages[r].source, len(names)) for r in rows])

    def passages(self, rows):
        self.read += len(rows)
        return [self.list[r] for r in rows]


def test_merging_reads_only_what_it_looks_at_and_merges_as_over_all():
    from qa.search import SearchParams, Searcher

    rng = np.random.default_rng(5)
    skipped = 0
    for trial in range(300):
        passages = []
        for _ in range(int(rng.integers(0, 45))):  # few files, sections and overlapping spans: merges happen
            start = int(rng.integers(0, 300))
            passages.append(Passage(text="x" * 40, source=f"f{rng.integers(0, 6)}", section=f"s{rng.integers(0, 2)}",
                                    start_line=1, end_line=1, start_char=start, end_char=start + 40))
        k = int(rng.integers(0, 12))
        order = list(rng.permutation(len(passages)))
        for most in (1, 3):
            expected = merge_ranked([passages[r] for r in order], k, most)
            for numbers in (True, False):
                searcher = object.__new__(Searcher)
                searcher.reader, searcher.params = _Rows(passages, numbers), SearchParams(merge_max=most)
                groups, got = searcher._merge(order, k, {})
                assert groups == expected, (trial, numbers)
                assert all(got[i] is passages[order[i]] for group in groups for i in group)
                if not numbers:
                    assert searcher.reader.read == len(order)
                else:
                    skipped += len(order) - searcher.reader.read
    assert skipped > 1000  # passages of other files than the k results' were not read
