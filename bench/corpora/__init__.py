"""Real-document benchmark collections (issue 10): Debian documentation packages materialised as
corpus folders, with hand-written questions per collection (`<name>/dev.jsonl`, `<name>/test.jsonl`).

Commands: `python -m bench.corpora.install`, `python -m bench.corpora.stats`,
`python -m bench.corpora.check`. See bench/corpora/README.md.
"""
