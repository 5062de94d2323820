"""Experiment (issue 10 item 3): what is embedded and indexed for a passage and its sentences.

    python -m bench.quality.embedded_input --corpora default,debref --inputs current,sentence-heading
    python -m bench.quality.embedded_input --report            # the table and leave-one-corpus-out

Each input variant builds every chosen collection as `bench.quality` does (`table.build`), except
for what goes into the vectors and BM25, then ranks the dev questions with the `qa` default
(`SearchParams()`, `Retriever.ask`'s ranking). The stored passages (text, offsets, section) are
the same in every variant: only the vectors' input (or BM25's) changes. Results are merged by
variant and split into `bench/cache/embedded-input.json` (so corpora can be run one at a time;
a rerun of a variant on a split replaces it); `--report` prints the table and the
leave-one-corpus-out choice (`table.loco`) over every variant measured on every dev split.

Variants (`INPUTS`); all but `current` chunk with `ChunkSettings(title_root=False)`, the
chunking they were measured with (before the <title> became the heading path's root):
- `current`: what `qa index` embeds now: passage = "heading path: text" (`embedding_text`), the
  path rooted at an HTML page's <title> (`chunking.rooted`), sentence = its text alone, BM25 over
  "heading path\\ntext" (`lexical.bm25_text`);
- `untitled`: the same with the heading paths of the headings alone (what `current` was when
  these were measured: the baseline of every other variant);
- `sentence-heading`: each sentence embedded as "heading path: sentence";
- `sentence-last-heading`: each sentence as "last heading of the path: sentence";
- `bare`: passage vectors of the text alone (does the heading path earn its place in the vector?);
- `passage-last-heading`: passage = "last heading of the path: text" (a shorter prefix);
- `bm25-bare`: BM25 over the text alone (and in BM25?);
- `title-root`: the heading path rooted at the document's HTML <title> when it does not hold it
  (sqlite's "1. Overview" of lang_delete.html becomes "DELETE › 1. Overview"; PostgreSQL's
  reference pages' "Parameters" becomes "CREATE TRIGGER › Parameters"), in the passage vector;
- `title-root-bm25`: the same, in the passage vector and in BM25;
- `neighbours`: each passage vector + 0.5 × the vectors of the passages before and after it in
  the same section (normalised): neighbouring context without re-encoding.
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import table

OUT = table.CACHE / "embedded-input.json"


def _last(section: str) -> str:
    return section.rsplit(" › ", 1)[-1]


@dataclass(frozen=True)
class Inputs:
    """What is embedded (passages, sentences) and indexed (BM25) for a collection's passages."""

    name: str
    passage: str = "heading"  # "heading" (`embedding_text`), "last" (the path's last heading) or "bare"
    sentence: str = "bare"  # "bare", "heading" (the path) or "last" (its last heading)
    bm25_heading: bool = True
    neighbours: float = 0.0  # weight of the same-section neighbours' vectors added to a passage's
    title: str = ""  # "vector" / "both": the HTML <title> as the heading path's root, in the vector / and BM25
    titles: dict | None = None  # source -> <title> (set by `for_folder`)
    title_root: bool = False  # chunked with `ChunkSettings(title_root=...)` (True: what qa index does now)

    @property
    def chunking(self):
        from qa.config import ChunkSettings

        return ChunkSettings(title_root=self.title_root)

    def for_folder(self, folder: Path) -> "Inputs":
        """With the <title> of every HTML file of `folder` (when `title` is set)."""
        if not self.title:
            return self
        titles = {}
        for path in sorted(Path(folder).rglob("*")):
            if path.suffix.lower() in (".html", ".htm"):
                m = re.search(r"<title[^>]*>(.*?)</title>", path.read_text(encoding="utf-8", errors="replace"), re.S | re.I)
                if m and m.group(1).strip():
                    titles[path.relative_to(folder).as_posix()] = " ".join(html.unescape(m.group(1)).split())
        return dataclasses.replace(self, titles=titles)

    def path(self, p) -> str:
        """The passage's heading path, rooted at its document's title when the path does not
        already hold it (nor its root the title)."""
        t = (self.titles or {}).get(p.source, "")
        root = p.section.split(" › ")[0].replace("¶", "").strip().lower()
        if not t or (p.section and (t.lower() in p.section.lower() or root in t.lower())):
            return p.section
        return f"{t} › {p.section}" if p.section else t

    def titled(self, passages):
        return [dataclasses.replace(p, section=self.path(p)) for p in passages]

    def texts(self, passages, spans, sentence_texts):
        from qa.embedding import embedding_text

        if self.title:
            passages = self.titled(passages)
        ptexts = [embedding_text(p) if self.passage == "heading" else p.text if self.passage == "bare" or not p.section
                  else f"{_last(p.section)}: {p.text}" for p in passages]
        if self.sentence == "bare":
            return ptexts, sentence_texts
        head = (lambda s: s) if self.sentence == "heading" else _last
        stexts = [f"{head(passages[row].section)}: {t}" if passages[row].section else t
                  for (row, _, _), t in zip(spans, sentence_texts)]
        return ptexts, stexts

    def bm25_passages(self, passages):
        if self.title == "both":
            passages = self.titled(passages)
        return passages if self.bm25_heading else [dataclasses.replace(p, section="") for p in passages]

    def after(self, data):
        if not self.neighbours:
            return data
        v = data.passage_vectors
        mixed = v.copy()
        ps = data.passages
        for i in range(len(ps)):
            for j in (i - 1, i + 1):
                if 0 <= j < len(ps) and ps[j].source == ps[i].source and ps[j].section == ps[i].section:
                    mixed[i] += self.neighbours * v[j]
        mixed /= np.maximum(np.linalg.norm(mixed, axis=1, keepdims=True), 1e-12)
        return dataclasses.replace(data, passage_vectors=mixed.astype(np.float32))


INPUTS = {i.name: i for i in [
    Inputs("current", title_root=True),
    Inputs("untitled"),
    Inputs("sentence-heading", sentence="heading"),
    Inputs("sentence-last-heading", sentence="last"),
    Inputs("bare", passage="bare"),
    Inputs("passage-last-heading", passage="last"),
    Inputs("bm25-bare", bm25_heading=False),
    Inputs("neighbours", neighbours=0.5),
    Inputs("title-root", title="vector"),
    Inputs("title-root-bm25", title="both"),
]}
SHOWN = ("dense", "dense best-sentence", table.DEFAULT)


def measure(corpora: list[str], inputs: list[str], splits: list[str], embedder, log=print) -> dict:
    """{variant: {corpus/split: summary without records}} for every chosen input variant."""
    from qa.search import SearchParams

    chosen = [c for c in table.collections() if c.name in corpora]
    out = {}
    for name in inputs:
        log(f"== {name}")
        results = table.run(chosen, embedder, {table.DEFAULT: SearchParams()}, splits, log=log,
                            inputs=INPUTS[name])
        out[name] = {k: {x: y for x, y in r.items() if x != "records"} for k, r in results.items()}
    return out


def merge(path: Path, new: dict) -> dict:
    old = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    for variant, splits in new.items():
        old.setdefault(variant, {}).update(splits)
    path.write_text(json.dumps(old, indent=1) + "\n", encoding="utf-8")
    return old


def report(merged: dict) -> str:
    """Per split: the qa default's hit@1 / hit@5 / MRR@10 and flagged counts under every variant;
    then leave-one-corpus-out over the variants measured on every dev split."""
    variants = list(merged)
    splits = sorted({s for v in merged.values() for s in v})
    lines = ["| corpus / split | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]
    for s in splits:
        cells = []
        for v in variants:
            r = merged[v].get(s)
            if r is None:
                cells.append("—")
                continue
            m = r["systems"][table.DEFAULT]
            f = r["flagged"][table.DEFAULT]
            nd = f", nDCG {m['ndcg@10']:.4f}" if "ndcg@10" in m else ""
            cells.append(f"{table.cell(m)}{nd} (flagged {f['answerable'][0]} ans, "
                         f"{f['off-topic'][0] + f['not-covered'][0]}/{f['off-topic'][1] + f['not-covered'][1]} unans)")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines += ["", "Dense best-sentence baseline (hit@1 / hit@5 / MRR@10):", "",
              "| corpus / split | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]
    for s in splits:
        lines.append(f"| {s} | " + " | ".join(table.cell(merged[v][s]["systems"]["dense best-sentence"])
                                               if s in merged[v] else "—" for v in variants) + " |")
    # leave-one-corpus-out: the variants as systems of one result set, over the dev splits all have
    devs = [s for s in splits if s.endswith("/dev") and all(s in merged[v] for v in variants)]
    results = {s: {**merged[variants[0]][s], "systems": {v: merged[v][s]["systems"][table.DEFAULT] for v in variants}}
               for s in devs}
    for s in splits:
        if s.endswith("/test") and all(s in merged[v] for v in variants):
            results[s] = {**merged[variants[0]][s], "systems": {v: merged[v][s]["systems"][table.DEFAULT] for v in variants}}
    if len(devs) >= 2:
        lines += ["", f"Leave-one-corpus-out over {', '.join(devs)}:", "", table.loco(results, variants)]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.quality.embedded_input", description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpora", default="default,debref")
    ap.add_argument("--inputs", default=",".join(INPUTS), help=f"comma-separated, of: {', '.join(INPUTS)}")
    ap.add_argument("--splits", default="dev", help="comma-separated (dev, test); dev unless deciding is over")
    ap.add_argument("--report", action="store_true", help="print the table of every variant measured so far")
    ap.add_argument("--only", default="", help="with --report: comma-separated variants to show")
    ap.add_argument("--cache", default=str(table.CACHE))
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    if args.report:
        merged = json.loads(Path(args.out).read_text(encoding="utf-8"))
        if args.only:
            merged = {v: merged[v] for v in args.only.split(",") if v in merged}
        print(report(merged))
        return 0
    inputs = [i.strip() for i in args.inputs.split(",") if i.strip()]
    unknown = [i for i in inputs if i not in INPUTS]
    if unknown:
        print(f"unknown input variant {', '.join(unknown)}: choose among {', '.join(INPUTS)}", file=sys.stderr)
        return 2
    from qa.embedding import get_embedder
    from qa.evaluation import CachedEmbedder

    inner = get_embedder()
    inner.use_cache_dir(Path(args.cache) / "onnx")
    embedder = CachedEmbedder(inner, Path(args.cache))
    embedder._con.execute("PRAGMA busy_timeout = 120000")
    new = measure([c.strip() for c in args.corpora.split(",")], inputs,
                  [s.strip() for s in args.splits.split(",") if s.strip()], embedder)
    print(report(merge(Path(args.out), new)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
