"""Label-free adaptation of the bundled model to one corpus (issue 10, item 3): an experiment.

    nice -n 5 python -m bench.quality.adapt --corpus debref            # train, print the folder
    nice -n 5 python -m bench.quality --corpora debref --splits dev --no-write \
        --model $PWD/bench/cache/adapted/debref-<tag>                  # evaluate it (dev only)

Training pairs come from the corpus alone, chunked as `qa index` chunks it (bench/quality/table.py):
- "sentence": (one sentence of a passage, the passage without it, under its section title) -- the
  inverse cloze task: a sentence stands for a question whose answer is around it;
- "heading": (a section title, the first passage of the section, without its title);
- "keywords": (the 3-5 rarest words of a passage, in random order, the passage) -- keyword queries.
The model is fine-tuned with sentence-transformers' `MultipleNegativesRankingLoss` (in-batch
negatives; no pair of a batch comes from the same passage), one epoch, AdamW with linear warm-up,
seed fixed, in a plain torch loop (the venv has no `datasets`/`accelerate` for the Trainer). The
adapted model is saved to bench/cache/adapted/<corpus>-<tag>/ (never in the repository); its
folder path is its model name, so the embedding cache and the ONNX export keep it apart.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import time
from pathlib import Path

from bench.quality.table import CACHE, chunked, collections

KINDS = ("sentence", "heading", "keywords")


def make_pairs(passages, kinds=KINDS, max_pairs: int = 2000, seed: int = 0) -> list[tuple[str, str, int]]:
    """(query, positive, passage row) pairs built from `passages` alone, shuffled, at most `max_pairs`."""
    from qa.chunking import split_sentences
    from qa.embedding import embedding_text
    from qa.lexical import tokenize

    rng = random.Random(seed)
    pairs = []
    if "sentence" in kinds:
        for row, p in enumerate(passages):
            spans = [(a, b) for a, b in split_sentences(p.text) if len(p.text[a:b].split()) >= 5]
            if len(spans) < 2:
                continue
            a, b = rng.choice(spans)
            rest = " ".join((p.text[:a] + " " + p.text[b:]).split())
            pairs.append((" ".join(p.text[a:b].split()), f"{p.section}: {rest}" if p.section else rest, row))
    if "heading" in kinds:
        seen = set()
        for row, p in enumerate(passages):
            key = (p.source, p.section)
            if p.section and key not in seen and len(p.section.split()) >= 2:
                seen.add(key)
                pairs.append((p.section, p.text, row))
    if "keywords" in kinds:
        tokens = [set(tokenize(p.text)) for p in passages]
        df: dict[str, int] = {}
        for ts in tokens:
            for t in ts:
                df[t] = df.get(t, 0) + 1
        words = re.compile(r"[A-Za-z][A-Za-z0-9_.-]+")
        for row, p in enumerate(passages):
            # surface words, ranked by the document frequency of their stem (seen twice at least: no typos)
            cands = {}
            for w in words.findall(p.text):
                stem = tokenize(w)
                if stem and df.get(stem[0], 0) >= 2 and w.lower() not in cands:
                    cands[w.lower()] = df[stem[0]]
            rare = sorted(cands, key=lambda w: (cands[w], w))[: rng.randint(3, 5)]
            if len(rare) >= 3:
                rng.shuffle(rare)
                pairs.append((" ".join(rare), embedding_text(p), row))
    rng.shuffle(pairs)
    return pairs[:max_pairs]


def batches(pairs, size: int) -> list[list[tuple[str, str, int]]]:
    """`pairs` packed into batches of `size` in which no two pairs share a passage (an in-batch
    negative must be a real negative); a last short batch is kept."""
    out: list[list] = []
    rows: list[set] = []
    for pair in pairs:
        for batch, used in zip(out, rows):
            if len(batch) < size and pair[2] not in used:
                batch.append(pair)
                used.add(pair[2])
                break
        else:
            out.append([pair])
            rows.append({pair[2]})
    return out


def train(base: str, pairs, out: Path, batch_size: int = 32, lr: float = 2e-5, seed: int = 0,
          max_seq_length: int | None = None, log=print) -> dict:
    """Fine-tune `base` on `pairs` with MultipleNegativesRankingLoss for one epoch; save to `out`.
    Returns the run's figures (steps, seconds)."""
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import losses

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    model = SentenceTransformer(base, device="cpu", local_files_only=True)
    reads = model.max_seq_length
    if max_seq_length:
        model.max_seq_length = max_seq_length  # shorter while training only
    loss = losses.MultipleNegativesRankingLoss(model)
    groups = batches(pairs, batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warmup = max(1, len(groups) // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (len(groups) - s) / max(1, len(groups) - warmup))))
    model.train()
    t0 = time.time()
    losses_seen = []
    for step, group in enumerate(groups):
        features = [model.preprocess([q for q, _, _ in group]), model.preprocess([p for _, p, _ in group])]
        value = loss(features, None)
        value.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses_seen.append(float(value.detach()))
        if step % 10 == 0 or step == len(groups) - 1:
            log(f"step {step + 1}/{len(groups)} loss {np.mean(losses_seen[-10:]):.4f} ({time.time() - t0:.0f} s)")
    seconds = time.time() - t0
    model.eval()
    model.max_seq_length = reads  # the saved model reads what the bundled one reads
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    model.save(str(tmp))
    for name in ("vocab.txt", "special_tokens_map.json"):  # not re-saved; vocab.txt gives "not found" its common words
        if (Path(base) / name).exists() and not (tmp / name).exists():
            shutil.copyfile(Path(base) / name, tmp / name)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return {"pairs": len(pairs), "steps": len(groups), "train_seconds": round(seconds, 1),
            "first_loss": round(float(np.mean(losses_seen[:10])), 4), "last_loss": round(float(np.mean(losses_seen[-10:])), 4)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.quality.adapt", description=__doc__.split("\n\n")[0])
    qa_corpora = [c.name for c in collections() if c.kind == "qa"]
    ap.add_argument("--corpus", required=True, choices=qa_corpora)
    ap.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated pair kinds, of: {', '.join(KINDS)}")
    ap.add_argument("--max-pairs", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-seq-length", type=int, default=128, help="tokens per text while training (the model reads 256)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default=str(CACHE))
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from qa.documents import load_corpus
    from qa.embedding import resolve_model

    kinds = [k for k in args.kinds.split(",") if k]
    c = next(c for c in collections() if c.name == args.corpus)
    t0 = time.time()
    passages, _, _ = chunked(load_corpus(c.folder).documents)
    pairs = make_pairs(passages, kinds, args.max_pairs, args.seed)
    print(f"{args.corpus}: {len(passages)} passages, {len(pairs)} pairs ({time.time() - t0:.0f} s)")
    for q, p, _ in pairs[:3]:
        print(f"  {q[:80]!r} -> {p[:80]!r}")
    tag = f"{'+'.join(k[0] for k in kinds)}-n{args.max_pairs}-b{args.batch}-lr{args.lr:g}-s{args.seed}-t{args.max_seq_length}"
    out = Path(args.cache) / "adapted" / f"{args.corpus}-{tag}"
    figures = train(resolve_model("all-MiniLM-L6-v2"), pairs, out, args.batch, args.lr, args.seed, args.max_seq_length)
    record = {"corpus": args.corpus, "kinds": kinds, "model": str(out), **figures}
    print(json.dumps(record))
    with open(Path(args.cache) / "adapted" / "runs.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
