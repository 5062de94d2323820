"""Render bench/results/*.json as bench/RESULTS.md: one table of targets with PASS/FAIL, then
the measured numbers of each benchmark."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.common import RESULTS, ROOT

ORDER = ["cold_start", "warm_query", "build", "scale", "soak", "milvus", "milvus_parity"]
HOW = {
    "cold_start": "python -m bench.speed.cold",
    "warm_query": "python -m bench.speed.warm",
    "build": "python -m bench.speed.build",
    "scale": "python -m bench.speed.scale run",
    "milvus": "python -m bench.speed.milvus",
    "milvus_parity": "python -m bench.quality.milvus_parity",
    "soak": "python -m bench.speed.soak",
}


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _details(name: str, r: dict) -> list[str]:
    lines = []
    if name == "cold_start":
        lines += [
            f"- `qa ask \"{r['question']}\"` (fresh process, index built): p50 {r['qa_ask']['p50_ms']:.0f} ms, "
            f"p95 {r['qa_ask']['p95_ms']:.0f} ms over {r['qa_ask']['n']} runs; first run {r['first_run_seconds']['qa_ask']} s",
            f"- `python -c \"import sentence_transformers\"`: p50 {r['import_sentence_transformers']['p50_ms']:.0f} ms, "
            f"first run {r['first_run_seconds']['import_sentence_transformers']} s",
            f"- `qa serve` path (fresh process: import the web app, build it, load the index, answer once; no torch): "
            f"p50 {r['serve_app_and_first_answer']['p50_ms']:.0f} ms" if "serve_app_and_first_answer" in r else "",
            f"- heavy modules `qa ask` imported: {', '.join(r['qa_ask_imports']) or 'none of torch, sentence_transformers, transformers, gradio'}",
        ]
    elif name == "warm_query":
        lines += [
            f"- index: {r['corpus']}: {r['passages']:,} passages, {r['sentences']:,} sentences, vector index `{r['vector_index']}`",
            f"- `Retriever.search(k=10)`: p50 {r['search']['p50_ms']} ms, p95 {r['search']['p95_ms']} ms over {r['questions']} SciFact questions",
            f"- encoding the question alone ({r['encoder']}): p50 {r['encode']['p50_ms']} ms, p95 {r['encode']['p95_ms']} ms",
        ]
        if "exact_index" in r:
            e = r["exact_index"]
            lines.append(f"- same corpus with an exact (flat) index: search p50 {e['search']['p50_ms']} ms, "
                         f"p95 {e['search']['p95_ms']} ms (ratio {e['ratio']}): why the exact index stops at `EXACT_MAX`")
    elif name == "build":
        b, q = r["bare_encode"], r["qa_index"]
        lines += [
            f"- corpus: {r['corpus']}: {r['passages']:,} passages + {r['sentences']:,} distinct sentences = {r['texts_embedded']:,} texts embedded",
            f"- `qa index` (whole command): {q['wall_seconds']} s = {q['passages_per_s']} passages/s "
            f"({q['texts_per_s']} texts/s), peak RSS {q['peak_rss_mb']} MB",
            f"- bare `SentenceTransformer.encode` of the same texts: {b['seconds']} s = {b['passages_per_s']} passages/s "
            f"({b['texts_per_s']} texts/s), peak RSS {b['peak_rss_mb']} MB; passages alone: {b['passages_only_seconds']} s",
        ]
        if r.get("first_qa_index_with_export"):
            f = r["first_qa_index_with_export"]
            lines.append(f"- first `qa index` of a model version (ONNX export included): {f['wall_seconds']} s, peak RSS {f['peak_rss_mb']} MB")
    elif name == "scale":
        if "side_by_side" in r:
            sb = r["side_by_side"]
            lines.append(f"- interleaved in one process: vector search p50 {sb['reference']['vector_search']['p50_ms']} ms "
                         f"({sb['reference']['passages']:,}) vs {sb['large']['vector_search']['p50_ms']} ms ({sb['large']['passages']:,}); "
                         f"Retriever.search without encoding p50 {sb['reference']['retriever_search_without_encoding']['p50_ms']} ms vs "
                         f"{sb['large']['retriever_search_without_encoding']['p50_ms']} ms"
                         + (f" (ratio {r['info']['retriever_search_p50_ratio_without_encoding_interleaved']}, info: no target)"
                            if "retriever_search_p50_ratio_without_encoding_interleaved" in r.get("info", {}) else ""))
        for label in ("reference", "large"):
            s = r[label]
            lines.append(
                f"- {s['passages']:,} passages (`{s['vector_index']}`): build {s['build_seconds']} s "
                f"(peak {s['build_peak_rss_mb']:,} MB; {', '.join(f'{k} {v}' for k, v in s['stages_seconds'].items())}); "
                + (f"index reused from that build, made {s['reused_build_of']}; " if s.get("reused_build_of") else "")
                + f"load {s['load_seconds']} s; recall@10 {s['recall_at_10']}; vector search p50 {s['vector_search']['p50_ms']} ms "
                f"p95 {s['vector_search']['p95_ms']} ms; Retriever.search (encoding excluded) p50 "
                f"{s['retriever_search_without_encoding']['p50_ms']} ms p95 {s['retriever_search_without_encoding']['p95_ms']} ms; "
                f"vectors {s['vector_bytes'] / 1e6:,.1f} MB = {s['vector_fraction_of_flat_float32']} of flat float32; "
                f"RSS peak {s['rss_mb']['peak']:,} MB (after load {s['rss_mb']['after_load']:,} MB)"
            )
        if r.get("threshold_sweep"):
            lines += ["", "  Exact-index threshold sweep (Retriever.search p50 without encoding, ms; recall@10 of HNSW)"
                      + (f" - note: {r['threshold_sweep_note']}" if r.get("threshold_sweep_note") else "") + ":", "",
                      "  | passages | exact (flat) | HNSW | HNSW recall@10 |", "  |---:|---:|---:|---:|"]
            for row in r["threshold_sweep"]:
                lines.append(f"  | {row['passages']:,} | {row['flat_p50_ms']} | {row['hnsw_p50_ms']} | {row['hnsw_recall_at_10']} |")
        lines += ["", "  Synthetic data: " + " ".join(r["synthetic_data"].split())]
    elif name == "soak":
        rss = r["server_rss_mb"]
        lines += [
            f"- `qa serve` with {r['clients']} concurrent clients for {r['minutes']:g} min while `qa index --watch` "
            f"re-indexed after a change every {r['change_every_seconds']:g} s "
            f"({r['changes']['edit']} edits, {r['changes']['add']} adds, {r['changes']['delete']} deletes; {r['builds']} builds)",
            f"- {r['requests']:,} requests, {r['failed']} failed; {r['citations']:,} citations checked against the "
            f"file versions they came from, {r['inexact']} inexact",
            f"- server RSS {rss['after_warmup']} MB after warm-up, {rss['end']} MB at the end (max {rss['max']} MB): "
            f"growth {r['server_rss_growth']:.1%}",
            f"- generation folders on disk at once: at most {r['generations_max_seen']['all']}; left after the "
            f"watcher stopped: {len(r['generations_left'])}",
        ]
    elif name == "milvus":
        lines += [
            f"- synthetic index of {r['passages']:,} passages, {r['sentences']:,} sentences, {r['sources']:,} source files; "
            f"the filter keeps {r['filter_sources']:,} files ({r['filter_passages']:,} passages); 200 questions "
            f"(vector search), 100 (whole hybrid `Searcher.search`, k=5, encoding excluded)",
            "",
            "  | backend | build s | open s | filter | recall@10 | vector search p50 / p95 ms | hybrid search p50 / p95 ms |",
            "  |---|---:|---:|---|---:|---:|---:|",
        ]
        for backend, b in r["backends"].items():
            for label in ("no filter", "source filter"):
                m = b[label]
                lines.append(f"  | {backend} (`{b['vector_index']}`) | {b['build_seconds']} | {b['open_seconds']} | {label} | "
                             f"{m['recall_at_10']} | {m['vector_search_p50_ms']} / {m['vector_search_p95_ms']} | "
                             f"{m['hybrid_search_p50_ms']} / {m['hybrid_search_p95_ms']} |")
        if r.get("note"):
            lines += ["", "  " + r["note"]]
    elif name == "milvus_parity":
        lines.append(f"- embedder `{r['embedder']}`; milvus side: {r['milvus_uri_kind']}")
        for kind in ("qa", "beir"):
            if kind not in r:
                continue
            p = r[kind]
            what = f"{p['dataset']} over {p['corpus']}/" if kind == "qa" else f"{p['dataset']} {p['split']}"
            keys = [k for k, v in p["local"]["metrics"].items() if isinstance(v, float)]
            lines.append(f"- {what}: largest difference {p['largest_difference']:.4f}; milvus citations checked "
                         f"{p['milvus']['citations_checked']:,}, wrong {p['milvus']['citations_wrong']}")
            lines.append("  " + "; ".join(f"{k} {p['local']['metrics'][k]:.4f} / {p['milvus']['metrics'][k]:.4f}"
                                          for k in keys) + " (local / milvus)")
    return lines


def render(results_dir: Path = RESULTS) -> str:
    results = {}
    for path in sorted(Path(results_dir).glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        results[data.get("benchmark", path.stem)] = data
    names = [n for n in ORDER if n in results]  # others (bench/speed/incremental.py) have their own format
    machines = {(results[n]["machine"]["cores"], results[n]["machine"]["date"][:10]) for n in names}
    out = ["# Benchmark results", "",
           "Written by `make bench` (`python -m bench.speed.report`). Every ratio is measured side by side in one run.", ""]
    for cores in sorted({c for c, _ in machines}):
        dates = sorted(d for c, d in machines if c == cores)
        when = f"run on {dates[0]}" if len(dates) == 1 else f"runs on {', '.join(dates)}; each section gives its date"
        out.append(f"Machine: {cores} cores; {when} (UTC).")
    out += ["", "| target | measured | limit | result |", "|---|---:|---:|---|"]
    for name in names:
        for t in results[name].get("targets", []):
            out.append(f"| {t['name']} | {_fmt(t['value'])} | {t['op']} {_fmt(t['limit'])} | {'PASS' if t['pass'] else 'FAIL'} |")
    inc = results.get("incremental")
    if inc and "edit_over_full" in inc and "target_edit_over_full" in inc:  # bench/speed/incremental.py
        ok = inc["edit_over_full"] <= inc["target_edit_over_full"]
        out.append(f"| incremental: edit one file / full build (python -m bench.speed.incremental) | "
                   f"{_fmt(inc['edit_over_full'])} | <= {_fmt(inc['target_edit_over_full'])} | {'PASS' if ok else 'FAIL'} |")
    for name in names:
        r = results[name]
        out += ["", f"## {name} (`{HOW.get(name, name)}`, {r['machine']['date']})", ""] + _details(name, r)
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = parser.parse_args(argv)
    text = render(args.results)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
