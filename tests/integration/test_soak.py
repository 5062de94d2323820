"""The short soak (1 minute) of bench/speed/soak.py: `qa serve` with concurrent clients while
`qa index --watch` re-indexes after edits, adds and deletes; real processes and the real model."""

import pytest

from bench.speed.soak import run


@pytest.mark.model
def test_short_soak_serves_exact_citations_through_rebuilds(default_corpus_index, tmp_path):
    r = run(minutes=1.0, clients=8, change_every=2.0, cache_from=default_corpus_index.index_dir / ".cache",
            work=tmp_path)
    assert r["failed"] == 0, r["failures_sample"]
    assert r["inexact"] == 0, r["failures_sample"]
    assert r["requests"] > 0 and r["citations"] >= r["requests"]
    assert sum(r["changes"].values()) >= 5 and r["builds"] >= 3  # the index really changed under the clients
    assert r["generations_max_seen"]["all"] <= 2  # the live one and the one being built
    assert len(r["generations_left"]) == 1 and not r["generations_left"][0].endswith(".tmp")
    assert r["server_alive_after"]
