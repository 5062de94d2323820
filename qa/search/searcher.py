"""SEARCH: dense + BM25 retrieval over an `IndexReader`, fused and re-scored.

Handed an open `qa.store.base.IndexReader` and an `Embedder`; sees no FAISS, file or engine,
computes no index and writes nothing. The "not found" decision is `qa.answer`'s.

How a passage is scored (measured on the dev questions and SciFact train, see bench/quality.md):
- dense: the larger of the passage's cosine and `sentence_weight` × its best sentence's cosine,
  so that one sentence that answers is not drowned by the rest of the passage;
- bm25: BM25 (`qa.lexical`) over section title + text;
- fused ("cosine" fusion): dense + `bm25_weight` × BM25 / the query's best BM25 score, over each
  retriever's top `candidates`. The cosine keeps one scale on every corpus, so one weight serves
  a 16-passage corpus and a 13,000-passage one;
- re-scored: the top `rerank_depth` fused passages get `rerank_bonus` added: the passage's own
  cosine, the IDF-weighted share of the question's words in its best sentence, and whether that
  sentence holds what a "when" question asks for (a year or date). The weights
  were fitted on SciFact train and SQuAD questions outside test_1k (bench/quality/learn_fit.py), not on
  the dev questions. When the top passages are structured documentation (heading paths of two
  levels or more), their own cosine and length count more (refitted leave-one-corpus-out on the
  dev splits of every collection, bench/quality/refit.py).
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Sequence

import numpy as np

from ..lexical import tokenize, tokenize_many
from ..schema import Hit, ScoreParts
from ..store.base import IndexReader
from .merge import Shown, merge_ranked, merged_passage, trim_shown
from .fusion import (
    answer_types,
    is_navigation,
    dense_scores,
    fuse,
    held_types,
    match_sources,
    ranks_of,
    rerank_bonus,
    structured_share,
    word_share,
)
from .params import SearchParams


class SentenceScores:
    """Sentence cosines computed only where asked (approximate indexes): indexable like the
    full array of the exact path, `scores[j]` is the cosine of the query with sentence j.

    Args:
        reader: the index (sentence vectors of other ids are read from it on demand);
        query: the query vector; ids, cosines: sentence ids already scored (ascending) and their cosines;
        offsets, counts: where the sentences of each passage scored start in `ids`, and how many it has.
    """

    def __init__(self, reader: IndexReader, query: np.ndarray, ids: np.ndarray, cosines: np.ndarray,
                 offsets: np.ndarray | None = None, counts: np.ndarray | None = None):
        self._reader = reader
        self._query = query
        self._ids = ids
        self._cos = cosines
        self._offsets = offsets
        self._counts = counts

    def __getitem__(self, j) -> float:
        j = int(j)
        at = int(np.searchsorted(self._ids, j))
        if at < len(self._ids) and self._ids[at] == j:
            return float(self._cos[at])
        vector = self._reader.sentence_vectors(np.array([j], dtype=np.int64))[0]
        return float(np.asarray(vector, dtype=np.float32) @ self._query)

    def best_ids(self, positions) -> list[int]:
        """The id of the best sentence (the first of equals) of the passages at `positions` among
        those scored; -1 for a passage without sentences."""
        out = []
        for at in positions:
            first, n = int(self._offsets[at]), int(self._counts[at])
            out.append(int(self._ids[first + int(np.argmax(self._cos[first : first + n]))]) if n else -1)
        return out


_BLAS = None  # numpy's BLAS libraries (threadpoolctl), looked up at the first search; False: none found


def one_blas_thread():
    """A context in which numpy's BLAS runs on one thread. A search multiplies a few hundred to a
    few thousand 384-wide rows by the query: split over OpenBLAS's threads, that made a search
    3-4x slower on a busy 2-core machine (bench/quality.md "Approximate indexes as shipped"). The
    encoder's own libraries (torch) are left alone."""
    global _BLAS
    if _BLAS is None:
        try:
            from threadpoolctl import ThreadpoolController

            controller = ThreadpoolController()
            blas = [lib for lib in controller.info() if lib["user_api"] == "blas" and "torch" not in lib["filepath"]]
            # numpy's own (a wheel's numpy.libs/); else, e.g. numpy on a system BLAS, every BLAS but torch's
            # (faiss's own OpenBLAS is not used by a one-query search)
            numpy_own = [lib for lib in blas if "numpy" in Path(lib["filepath"]).parent.name]
            chosen = numpy_own or blas
            _BLAS = controller.select(filepath=[lib["filepath"] for lib in chosen]) if chosen else False
        except Exception:  # threadpoolctl missing or unable to read a library: leave threads as they are
            _BLAS = False
    return _BLAS.limit(limits=1) if _BLAS else nullcontext()


class Searcher:
    """Hybrid search over one open index. Build once; `search` is cheap and thread-safe.

    On an exact reader (`reader.exact`, small corpora) every passage and sentence is scored. On
    an approximate one the candidates are the `params.ann_candidates` best passages of the
    vector search (at least 2·k) and the `params.bm25_candidates` best of BM25 (at least three
    times as many), only their sentences are scored, and fusion ranks them alone. On both, the
    top `params.rerank_depth` fused passages are then re-scored.
    """

    def __init__(self, reader: IndexReader, embedder, params: SearchParams = SearchParams()):
        self.reader = reader
        self.embedder = embedder
        self.params = params
        self.exact = reader.exact
        self._n = len(reader)
        self._vectors = self._sentences = self._first_sentence = None
        if self.exact:  # small: plain in-memory copies, the fastest to score
            self._vectors = np.array(reader.passage_vectors(None), dtype=np.float32)
            self._sentences = reader.sentence_vectors(None)
            starts, counts = reader.sentence_range(np.arange(self._n, dtype=np.int64))
            self._first_sentence = np.append(starts, starts[-1] + counts[-1] if self._n else 0).astype(np.int64)

    def allowed_sources(self, patterns: Sequence[str] | None) -> set[str] | None:
        """The indexed sources matching `patterns` (None: no restriction)."""
        if not patterns:  # the common case: the list of sources is not even read
            return None
        return match_sources(self.reader.sources(), patterns)

    def _dense(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(dense score per passage, cosine per sentence, cosine per passage) (exact reader)."""
        passage_cos = np.asarray(self._vectors @ query, dtype=np.float32)
        if len(self._sentences):
            sent = np.asarray(self._sentences @ query, dtype=np.float32)
        else:
            sent = np.zeros(0, dtype=np.float32)
        best_sentence = np.full(self._n, -1.0, dtype=np.float32)
        if len(sent):  # sentences are grouped by passage: one max per passage's run of rows
            has = np.diff(self._first_sentence) > 0
            best_sentence[has] = np.maximum.reduceat(sent, self._first_sentence[:-1][has])
        return dense_scores(passage_cos, best_sentence, self.params), sent, passage_cos

    def best_sentences(self, query: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, SentenceScores, np.ndarray]:
        """Best sentence cosine of each passage in `rows` (ascending; -1 where it has none),
        reading only their sentence vectors; those sentences' cosines; and the id of each
        passage's best sentence (the first of equals; -1 where it has none)."""
        best, scores = self._best_sentences(query, rows)
        return best, scores, np.array(scores.best_ids(range(len(rows))), dtype=np.int64)

    def _best_sentences(self, query: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, SentenceScores]:
        """`best_sentences` without the best sentences' ids (`SentenceScores.best_ids` gives
        those of the passages that need them)."""
        starts, counts = self.reader.sentence_range(rows)
        best = np.full(len(rows), -1.0, dtype=np.float32)
        offsets = np.cumsum(counts) - counts  # where each passage's sentences start in `ids`
        total = int(offsets[-1] + counts[-1]) if len(rows) else 0
        ids = np.repeat(starts - offsets, counts) + np.arange(total)
        if total:
            cos = np.asarray(self.reader.sentence_vectors(ids), dtype=np.float32) @ query
            has = counts > 0
            best[has] = np.maximum.reduceat(cos, offsets[has])
        else:
            cos = np.zeros(0, np.float32)
        return best, SentenceScores(self.reader, query, ids, cos, offsets, counts)

    def _passages(self, rows: list[int], read: dict) -> list:
        """The passages of `rows`, reading from the index only those not in `read` (row -> passage,
        what this search has read already; updated)."""
        missing = [r for r in dict.fromkeys(rows) if r not in read]
        if missing:
            read.update(zip(missing, self.reader.passages(missing)))
        return [read[r] for r in rows]

    def _rerank(self, question: str, tokens: list[str], fused: np.ndarray, passage_cos: np.ndarray, sentence_cos,
                rows=None, *, read: dict) -> None:
        """Add `rerank_bonus` to the fused score of the top `rerank_depth` passages, in place
        (`tokens`: the question's, from `tokenize`).
        `fused` and `passage_cos` are indexed by passage row, or aligned with `rows` (the
        candidates of an approximate index, `sentence_cos` their `SentenceScores`). Reads only
        those passages' sentences (their cosines are already computed)."""
        p = self.params
        if p.rerank_depth <= 0 or not (p.rerank_passage or p.rerank_words or p.rerank_when or p.rerank_navigation
                                       or p.rerank_doc_passage or p.rerank_doc_length):
            return
        finite = np.flatnonzero(np.isfinite(fused))
        if not len(finite):
            return
        depth = min(p.rerank_depth, len(finite))
        top = finite[np.argpartition(-fused[finite], depth - 1)[:depth]] if depth < len(finite) else finite
        weights = self.reader.bm25_idf(set(tokens))
        kinds = answer_types(question)
        top_rows = (rows[top] if rows is not None else top).tolist()
        if rows is not None:  # SentenceScores of the candidates
            best = sentence_cos.best_ids(top.tolist())
        else:  # the passage's best sentence by cosine (the first of equals)
            best = []
            for i in top_rows:
                first, stop = int(self._first_sentence[i]), int(self._first_sentence[i + 1])
                best.append(first + int(np.argmax(sentence_cos[first:stop])) if stop > first else -1)
        spans = dict(zip((b for b in best if b >= 0), self.reader.sentence_spans([b for b in best if b >= 0])))
        texts, navigation, lengths = [], [], []
        passages = self._passages(top_rows, read)
        structured = structured_share([q.section for q in passages]) if p.rerank_doc_passage or p.rerank_doc_length else 0.0
        for passage, b in zip(passages, best):
            text = passage.text
            navigation.append(bool(p.rerank_navigation) and is_navigation(text))
            lengths.append(len(text.split()) if structured else 0)
            if b >= 0:
                _, start, end = spans[b]
                text = text[start - passage.start_char : end - passage.start_char]
            texts.append(text)
        bonus = [
            rerank_bonus(float(passage_cos[at]), word_share(weights, words), held_types(text, kinds), p, structured, n)
            - (p.rerank_navigation if nav else 0.0)
            for at, text, words, nav, n in zip(top, texts, tokenize_many(texts, set(weights)), navigation, lengths)
        ]
        fused[top] += bonus

    def score(self, question: str, sources: Sequence[str] | None = None, k: int = 0, query_vector=None) -> ScoreParts:
        """Every score part for every passage (arrays indexed by passage row; on an approximate
        index, for the candidates only, aligned with `parts.candidates`). `sources`: patterns of
        source paths to search (None: all). `query_vector`: the question's embedding when
        already computed (evaluation encodes queries in batches)."""
        return self._score(question, sources, k, query_vector, {})

    def _score(self, question: str, sources, k: int, query_vector, read: dict) -> ScoreParts:
        """`score`, keeping in `read` the passages re-scoring read (row -> passage)."""
        query = self.embedder.encode_queries([question])[0] if query_vector is None else query_vector
        allowed_sources = self.allowed_sources(sources)
        with one_blas_thread():
            if not self.exact:
                return self._score_candidates(question, query, allowed_sources, k, read)
            return self._score_all(question, query, allowed_sources, read)

    def _score_all(self, question: str, query: np.ndarray, allowed_sources: set[str] | None,
                   read: dict) -> ScoreParts:
        """`score` on an exact index: every passage and sentence."""
        p = self.params
        n = self._n
        dense, sent, passage_cos = self._dense(query)
        tokens = tokenize(question)
        bm25 = self.reader.bm25_scores(tokens)
        allowed = np.ones(n, dtype=bool) if allowed_sources is None else self.reader.source_mask(allowed_sources)
        bm25_order = np.argsort(-bm25, kind="stable")
        bm25_order = bm25_order[allowed[bm25_order] & (bm25[bm25_order] > 0)].astype(np.int64)
        dense_order = np.argsort(-dense, kind="stable")
        dense_order = dense_order[allowed[dense_order]].astype(np.int64)
        fused = fuse(dense, bm25, dense_order, bm25_order, p)
        fused[~allowed] = -np.inf
        self._rerank(question, tokens, fused, passage_cos, sent, read=read)
        return ScoreParts(
            query=query, dense=dense, question_dense=dense, bm25=bm25, sentence=sent, fused=fused,
            dense_rank=ranks_of(dense_order, n), bm25_rank=ranks_of(bm25_order, n), allowed=allowed,
        )

    def _score_candidates(self, question: str, query: np.ndarray, allowed_sources: set[str] | None,
                          k: int, read: dict) -> ScoreParts:
        """`score` on an approximate index: only candidates are scored. `parts.candidates`
        holds their passage rows (ascending); "dense", "bm25", "fused", the ranks and "allowed"
        are aligned with it rather than sized to the corpus (half a dozen corpus-sized arrays
        cost ~6 ms per query at 1,000,000 passages); ranks are ranks among the candidates."""
        p = self.params
        c = max(p.ann_candidates, 2 * k)
        ann_ids, ann_cos = self.reader.search(query, c, allowed_sources)
        tokens = tokenize(question)
        pool, _ = self.reader.bm25_search(tokens, max(p.bm25_candidates, 3 * c), allowed_sources)
        rows, first = np.unique(np.concatenate([ann_ids, pool]).astype(np.int64), return_index=True)
        from_ann = first < len(ann_ids)
        passage_cos = np.full(len(rows), -1.0, dtype=np.float32)
        passage_cos[from_ann] = ann_cos[first[from_ann]]
        if not from_ann.all():  # BM25 candidates the vector search did not return
            passage_cos[~from_ann] = self.reader.passage_vectors(rows[~from_ann]) @ query
        best, sentence_cos = self._best_sentences(query, rows)
        dense = dense_scores(passage_cos, best, p)
        bm25 = self.reader.bm25_scores(tokens, rows)
        # Orders are positions in `rows`; rows ascend, so position breaks ties as the row would.
        at = np.arange(len(rows))
        dense_order = np.lexsort((at, -dense))
        in_pool = np.searchsorted(rows, pool)
        bm25_order = in_pool[np.lexsort((in_pool, -bm25[in_pool]))]
        fused = fuse(dense, bm25, dense_order, bm25_order, p)
        self._rerank(question, tokens, fused, passage_cos, sentence_cos, rows, read=read)
        return ScoreParts(
            query=query, dense=dense, question_dense=dense, bm25=bm25, sentence=sentence_cos, fused=fused,
            dense_rank=ranks_of(dense_order, len(rows)), bm25_rank=ranks_of(bm25_order, len(rows)),
            allowed=np.ones(len(rows), dtype=bool),  # candidates are allowed passages only
            candidates=rows,
            searched=len(self.reader) if allowed_sources is None else int(self.reader.source_mask(allowed_sources).sum()),
        )

    def search(self, question: str, k: int = 5, sources: Sequence[str] | None = None) -> list[Hit]:
        """The top `k` passages for `question`, best first, each with its score parts."""
        hits, _, _ = self.search_with_scores(question, k, sources)
        return hits

    def search_with_scores(self, question: str, k: int, sources=None) -> tuple[list[Hit], ScoreParts, list[Shown]]:
        """(hits, their score parts, the passages behind each hit). With `params.merge`, passages
        of one place that overlap are shown as one result (`qa.search.merge`): more passages are read
        until `k` places are shown (or none is left)."""
        read: dict = {}  # passages read so far: re-scoring's top ones are shown too
        p = self.params
        parts = self._score(question, sources, k, None, read)
        allowed = int(parts.allowed.sum())
        k = max(0, min(k, allowed))
        pool = k * (p.merge_max + 1) if p.merge else k
        while True:
            if parts.candidates is not None:  # approximate index: parts are aligned with the candidates
                at = np.lexsort((parts.candidates, -parts.fused))[:pool]
                order = parts.candidates[at]
            else:
                order = at = np.argsort(-parts.fused, kind="stable")[:pool]
            at = at[np.isfinite(parts.fused[at])].tolist()  # -inf (filtered out) sort last
            order = order[: len(at)].tolist()
            if not p.merge:
                passages = self._passages(order, read)
                groups = [[g] for g in range(min(k, len(order)))]
                break
            groups, passages = self._merge(order, k, read)
            if len(groups) >= k or len(at) < pool:  # enough results, or no passage left to add
                break
            pool *= 2
        shown = [merged_passage([passages[g] for g in group]) for group in groups]
        if p.merge:
            shown = trim_shown(shown)
        firsts = [at[group[0]] for group in groups]  # the best passage of each result: its scores
        score, dense, bm25 = (parts.fused[firsts].tolist(), parts.dense[firsts].tolist(), parts.bm25[firsts].tolist())
        dense_rank, bm25_rank = parts.dense_rank[firsts].tolist(), parts.bm25_rank[firsts].tolist()
        hits, behind = [], []
        for h, (group, passage) in enumerate(zip(groups, shown)):
            behind.append(Shown(rows=tuple(order[g] for g in group), places=tuple(group)))
            hits.append(
                Hit(
                    **passage.__dict__,
                    rank=h + 1,
                    score=round(score[h], 6),
                    dense=round(dense[h], 6),
                    bm25=round(bm25[h], 6),
                    dense_rank=dense_rank[h] or None,
                    bm25_rank=bm25_rank[h] or None,
                )
            )
        return hits, parts, behind

    def _merge(self, order: list[int], k: int, read: dict) -> tuple[list[list[int]], list]:
        """`merge_ranked` of the passages of `order` (rows, best first) and those passages (None
        where not needed), reading only what the merge looks at when the reader tells the source
        of a row (`source_numbers`): once `k` results are formed, a passage of another file than
        theirs can neither join one nor start one, so it is skipped unread, as the merge would."""
        most = self.params.merge_max
        numbers = getattr(self.reader, "source_numbers", None)
        if numbers is None:
            passages = self._passages(order, read)
            return merge_ranked(passages, k, most), passages
        sources = numbers(np.asarray(order, dtype=np.int64)).tolist()
        passages: list = [None] * len(order)
        considered: list[int] = []  # positions handed to the merge, in rank order
        groups: list[list[int]] = []
        start = 0
        while start < len(order):
            if len(groups) < k:  # each passage starts at most one result: read as many as are missing
                batch = list(range(start, min(len(order), start + k - len(groups))))
                start = batch[-1] + 1
            else:  # the k results are formed: only passages of their files can join them
                theirs = {sources[g[0]] for g in groups}
                batch = [i for i in range(start, len(order)) if sources[i] in theirs]
                start = len(order)
            for i, passage in zip(batch, self._passages([order[i] for i in batch], read)):
                passages[i] = passage
            considered += batch
            merged = merge_ranked([passages[i] for i in considered], k, most)
            groups = [[considered[j] for j in group] for group in merged]
        return groups, passages

    def hit_sentences(self, rows, parts: ScoreParts, hits: Sequence[Hit] | None = None) -> list[list[tuple[int, int, float, int]]]:
        """For each hit (`rows`: what `search_with_scores` says is behind each, or plain passage
        rows), the sentences it shows as (start_char, end_char, cosine with the question, rank
        before merging of the best passage holding it), in text order, each span once; only
        those inside the hit's span when `hits` are given. What `qa.answer` decides with."""
        out = []
        for h, item in enumerate(rows):
            shown = item if isinstance(item, Shown) else Shown(rows=(int(item),), places=(h,))
            starts, counts = self.reader.sentence_range(np.asarray(shown.rows, dtype=np.int64))
            by_span: dict[tuple[int, int], tuple[float, int]] = {}
            for s, c, place in zip(starts, counts, shown.places):
                ids = list(range(int(s), int(s + c)))
                for j, (_, a, b) in zip(ids, self.reader.sentence_spans(ids) if ids else []):
                    if hits is not None and (a < hits[h].start_char or b > hits[h].end_char):
                        continue
                    if (a, b) not in by_span or place < by_span[(a, b)][1]:
                        by_span[(a, b)] = (float(parts.sentence[j]), place)
            out.append([(a, b, cos, place) for (a, b), (cos, place) in sorted(by_span.items())])
        return out
