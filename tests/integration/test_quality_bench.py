"""`make quality`'s code (bench/quality/table.py) at a tiny size: the fake embedder, tests/data as the
corpus, a two-document BEIR folder (the benchmark itself is `make quality`, not a test)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.quality import table as quality


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def tiny(tmp_path, corpus_dir):
    dev = _write_jsonl(tmp_path / "dev.jsonl", [
        {"id": "d1", "question": "When was the garden planted?", "evidence": "planted in 1921", "kind": "paraphrase"},
        {"id": "d2", "question": "Where does tar for the boats come from?", "evidence": "a supplier in Bergen", "kind": "keyword"},
        {"id": "d3", "question": "kubernetes pod autoscaling", "evidence": None, "kind": "unanswerable-offtopic"},
        {"id": "d4", "question": "How tall is the walnut tree?", "evidence": None, "kind": "unanswerable-ontopic"},
    ])
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    _write_jsonl(beir / "corpus.jsonl", [
        {"_id": "a", "title": "Roses", "text": "Roses are watered every morning at six by the gardeners."},
        {"_id": "b", "title": "Boats", "text": "The wooden boats race to the lighthouse each August."},
    ])
    _write_jsonl(beir / "queries.jsonl", [{"_id": "1", "text": "when are the roses watered"}])
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\ta\t1\n", encoding="utf-8")
    return [quality.Collection("tiny", "qa", corpus_dir, {"dev": [dev]}),
            quality.Collection("tinybeir", "beir", beir, {"test": ["test"]})]


def test_variants_are_columns_and_loco_chooses_on_the_other_corpora(tiny, fake_embedder, tmp_path):
    tiny[1].splits["dev"] = ["test"]  # a dev split for the BEIR collection too
    variants = {quality.DEFAULT: quality.parse_params([]), "bm25 heavy": quality.parse_params(["bm25_weight=2"])}
    results = quality.run(tiny, fake_embedder, variants, log=lambda _: None, cache=tmp_path / "cache")
    assert set(results["tiny/dev"]["systems"]) == {*quality.BASELINES, *variants}
    text = quality.loco(results, list(variants))
    assert "| tiny | " in text and "| tinybeir | " in text and "Chosen on every dev split" in text


def test_collections_above_the_exact_limit_are_scored_from_candidates_as_shipped(tiny, fake_embedder, tmp_path,
                                                                                monkeypatch):
    """A collection larger than EXACT_MAX is scored as `qa index` would index it (candidates only):
    where the candidate pools cover the corpus every rank (QA and BEIR documents) is the exact
    one, and a BEIR document is ranked by its candidate's row, not by its place among candidates."""
    from qa.store.local import vectors
    from qa.store.memory import MemoryReader

    exact = quality.run(tiny, fake_embedder, quality.parse_params([]), log=lambda _: None, cache=tmp_path / "cache")
    monkeypatch.setattr(vectors, "EXACT_MAX", 1)
    approx = quality.run(tiny, fake_embedder, quality.parse_params([]), log=lambda _: None, cache=tmp_path / "cache")
    for split in exact:
        assert [r["ranks"] for r in approx[split]["records"]] == [r["ranks"] for r in exact[split]["records"]]

    # one candidate from each retriever: the boats document (row 1) is the only candidate, first of one
    beir = tiny[1].folder
    _write_jsonl(beir / "queries.jsonl", [{"_id": "2", "text": "wooden boats race to the lighthouse"}])
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n2\tb\t1\n", encoding="utf-8")
    search, bm25_search = MemoryReader.search, MemoryReader.bm25_search
    monkeypatch.setattr(MemoryReader, "search", lambda self, q, k, s=None: search(self, q, 1, s))
    monkeypatch.setattr(MemoryReader, "bm25_search", lambda self, t, k, s=None: bm25_search(self, t, 1, s))
    one = quality.run(tiny[1:], fake_embedder, quality.parse_params([]), log=lambda _: None, cache=tmp_path / "cache")
    assert one["tinybeir/test"]["systems"][quality.DEFAULT]["hit@1"] == 1.0


def test_every_system_is_scored_on_every_split_and_written_between_the_markers(tiny, fake_embedder, tmp_path):
    results = quality.run(tiny, fake_embedder, quality.parse_params([]), log=lambda _: None, cache=tmp_path / "cache")
    assert list(results) == ["tiny/dev", "tinybeir/test"]
    qa_split = results["tiny/dev"]
    assert (qa_split["answerable"], qa_split["unanswerable"]) == (2, 2)
    assert set(qa_split["systems"]) == set(quality.SYSTEMS)
    # BM25 finds the planting year: the words "garden" and "planted" are in that passage only
    first = next(r for r in qa_split["records"] if r["id"] == "d1")
    assert first["ranks"]["BM25"] == 1
    kinds = {r["id"]: r["kind"] for r in qa_split["records"]}
    assert kinds == {"d1": "answerable", "d2": "answerable", "d3": "off-topic", "d4": "not-covered"}
    flagged = qa_split["flagged"][quality.DEFAULT]
    assert flagged["off-topic"][1] == 1 and flagged["answerable"][1] == 2
    assert set(first["features"]) >= {"best", "coverage", "missing", "reason"}
    beir = results["tinybeir/test"]
    assert beir["systems"]["BM25"]["hit@1"] == 1.0 and 0 < beir["systems"]["BM25"]["ndcg@10"] <= 1.0

    md = tmp_path / "quality.md"
    md.write_text("# history\n\nkept\n", encoding="utf-8")
    quality.write_markdown(md, results, quality.parse_params(["rerank_depth=0"]), "make quality")
    quality.write_markdown(md, results, quality.parse_params([]), "make quality")  # replaces, not appends
    text = md.read_text(encoding="utf-8")
    assert text.startswith("# history\n\nkept\n") and text.count(quality.BEGIN) == 1
    assert "| tiny/dev | " in text and "rerank_depth" not in text


def test_params_are_parsed_by_field_type_and_bad_ones_exit():
    params = quality.parse_params(["bm25_weight=0.5", "rerank_depth=3", "fusion=rrf", "merge=false"])
    assert (params.bm25_weight, params.rerank_depth, params.fusion, params.merge) == (0.5, 3, "rrf", False)
    assert quality.parse_params(["merge=true"]).merge is True
    with pytest.raises(SystemExit):
        quality.parse_params(["no_such_knob=1"])
    with pytest.raises(SystemExit):
        quality.parse_params(["rerank_depth=many"])
    with pytest.raises(SystemExit):
        quality.parse_params(["merge=maybe"])


def test_unknown_corpus_is_a_clear_error(capsys):
    assert quality.main(["--corpora", "nope", "--no-write"]) == 2
    assert "unknown corpus nope" in capsys.readouterr().err


def test_answer_sentence_bench_measures_what_ask_answers(corpus_dir, fake_embedder):
    from bench import answer_sentence
    from qa.documents import load_corpus
    from qa.retriever import Retriever
    from qa.store.memory import MemoryReader

    rows = [{"id": "a1", "question": "Which tree did she choose?", "evidence": "a single walnut tree"},
            {"id": "a2", "question": "When are the roses watered?", "evidence": "every morning at six"},
            {"id": "a3", "question": "Who planted the garden?", "evidence": "She chose roses"}]
    data = quality.build(load_corpus(corpus_dir).documents, fake_embedder)
    items = answer_sentence.cases(Retriever(MemoryReader(data), fake_embedder), rows)
    measured = answer_sentence.measure(items)
    assert measured["answerable"] == 3 and measured["top1"] == 1.0
    # the replay of the shipped choice is what `Retriever.ask` answered; the one-sentence choice of
    # before misses "She chose roses" (the sentence after the one naming the planter)
    shipped = answer_sentence.score_variant(items, {}, {})
    assert shipped["answer_sentence"] == measured["answer_sentence"] == 1.0
    before = answer_sentence.score_variant(items, answer_sentence.BEFORE, {})
    assert before["answer_sentence"] == round(2 / 3, 4) and before["mean_chars"] < shipped["mean_chars"]
    assert [m["id"] for m in measured["misses"]] == []


class _LookupEncoder:
    """The bundled model's real tokenizer (a 16-token window, so that texts overflow) with a
    stand-in for the transformer: each token's vector is fixed by its id alone (no context), so
    a question token's best cosine with a sentence is 1.0 exactly when the sentence has it."""

    inputs = {"input_ids", "attention_mask", "token_type_ids"}

    def __init__(self):
        from tokenizers import Tokenizer

        from qa.embedding import bundled_model_path

        self.tokenizer = Tokenizer.from_file(str(Path(bundled_model_path()) / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(16)
        self.table = np.random.default_rng(0).standard_normal((self.tokenizer.get_vocab_size(), 32))
        self.session = self

    def run(self, _outputs, feed):
        return [self.table[feed["input_ids"]]]

    def encode(self, texts):
        return np.stack([self.table[self.tokenizer.encode(t).ids].mean(axis=0) for t in texts])


def test_late_interaction_maps_tokens_to_sentences_by_offsets(corpus_dir, fake_embedder):
    from bench import answer_late, answer_sentence
    from qa.answer import candidates
    from qa.documents import load_corpus
    from qa.retriever import Retriever
    from qa.store.memory import MemoryReader

    encoder = _LookupEncoder()
    text = "The gardeners water the roses every morning at six, and the walnut tree on Sundays only."
    (vecs, offsets), = answer_late.token_vectors(encoder, [text])
    assert len(vecs) == len(offsets) > 14  # several windows; the special tokens dropped
    words = [text[a:b].lower() for a, b in offsets]
    # word pieces, in order, across the windows: every character of the text once
    assert "".join(words) == "".join(text.lower().split()) and words[:2] == ["the", "gardener"]
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0)

    data = quality.build(load_corpus(corpus_dir).documents, fake_embedder)
    rows = [{"id": "a2", "question": "When are the roses watered?", "evidence": "every morning at six"}]
    items = answer_sentence.cases(Retriever(MemoryReader(data), fake_embedder), rows)
    item = items[0]
    question, hits, sentences = rows[0]["question"], item["hits"], item["sentences"]
    qvec = encoder.encode([question])[0]
    feats, seconds = answer_late.features(encoder, qvec / np.linalg.norm(qvec), question, hits, sentences,
                                          lambda stem: (1.0, True))
    cands = candidates(question, hits, sentences)
    assert len(feats) == len(cands) > 1 and seconds > 0
    for f in feats:
        answer_late.derived(f)
    # MaxSim over content words: the sentence holding "roses" scores 1.0 on that token; its
    # score is the largest of all candidates
    best = max(range(len(cands)), key=lambda i: feats[i]["ms_idf"])
    assert "roses" in answer_sentence.span_text(hits, cands[best]).lower()
    assert all(0.0 <= f["f_core"] <= 1.0 + 1e-6 for f in feats)
    item["cands"], item["feats"] = cands, feats
    assert answer_late.score([item], {"add": {}})["answer"] == 1.0  # the shipped choice, replayed


def test_adaptation_pairs_come_from_the_corpus_and_batches_hold_real_negatives(corpus_dir):
    """bench/quality/adapt.py: every training pair is built from one passage's own text, and no
    batch holds two pairs of one passage (an in-batch negative must be a real negative)."""
    from bench.quality import adapt
    from qa.documents import load_corpus

    passages, _, _ = quality.chunked(load_corpus(corpus_dir).documents)
    pairs = adapt.make_pairs(passages, max_pairs=500, seed=0)
    assert pairs == adapt.make_pairs(passages, max_pairs=500, seed=0)  # seeded
    seen = set()
    for query, positive, row in pairs:
        p = passages[row]
        body = " ".join(p.text.split())
        if query == p.section:  # a heading and its first passage
            assert positive == p.text
            seen.add("heading")
        elif query in body:  # a sentence, and the passage without it
            assert query not in positive and positive.startswith(p.section)
            seen.add("sentence")
        else:  # keywords: rare words of the passage itself
            assert all(w in p.text.lower() for w in query.split())
            seen.add("keywords")
    assert seen == set(adapt.KINDS)
    groups = adapt.batches(pairs, 4)
    assert sorted(map(tuple, (x for g in groups for x in g))) == sorted(pairs)
    assert all(len(g) <= 4 and len({row for _, _, row in g}) == len(g) for g in groups)
    assert len(adapt.make_pairs(passages, kinds=("sentence",), max_pairs=2)) <= 2


def test_refit_features_replay_the_shipped_ranking(tiny, fake_embedder, tmp_path):
    """bench/quality/refit.py: the first stage's candidates with their features, re-scored with the
    shipped weights, rank every answerable question as the runner's qa default does (merged results
    included); the leave-one-corpus-out fit prints one row per corpus."""
    from bench.quality import refit

    tiny[1].splits["dev"] = ["test"]
    results = quality.run(tiny, fake_embedder, quality.parse_params([]), ["dev"], log=lambda _: None,
                          cache=tmp_path / "cache")
    data = {}
    for c in tiny:
        data[c.name] = refit.extract(c, "dev", fake_embedder, tmp_path / "cache")
        np.savez_compressed(refit.features_path(tmp_path, c.name, "dev"), **data[c.name])
        assert data[c.name]["X"].shape[2] == len(refit.FEATURES)
        weights = refit.shipped()
        replayed = refit.ranks(refit.rescored(data[c.name], [refit.FEATURES.index(k) for k in weights],
                                              np.array(list(weights.values())), 10), data[c.name])
        runner = [r["ranks"][quality.DEFAULT] for r in results[f"{c.name}/dev"]["records"] if r["kind"] == "answerable"]
        assert replayed == runner
    assert refit.code_share("$ sudo apt install foo\nThen run it.") == 0.5
    assert refit.is_keywords("peer authentication over tcp") and not refit.is_keywords("How do I mount it?")
    assert refit.main(["fit", "pcos,words_s1", "--corpora", "tiny,tinybeir", "--cache", str(tmp_path)]) == 0
    assert refit.main(["fit", "nonsense", "--corpora", "tiny", "--cache", str(tmp_path)]) == 2
