"""`qa` with the FakeEmbedder, for tests that need a real separate process (kill, lock, watch).

    python tests/integration/fake_qa.py index -q        # like `qa index -q`, embedding with FakeEmbedder

QA_TEST_PAUSE_AT=<point> makes the build print "PAUSED <point>" on stderr and sleep there
(QA_TEST_PAUSE_SECONDS, default 120), so a test can kill or interrupt it at that moment. Points, in build order:
  embed   first batch being embedded (lock held, nothing written)
  sqlite  the new generation's passage store written, in its temporary folder
  fsync   every file of the new generation written, before it is renamed into place
  rename  the new generation renamed into place, CURRENT still the old one
  swap    CURRENT repointed to the new generation, old ones not yet pruned
With --store milvus:
  milvus-rows     the new collections hold their passages and sentences, not yet the manifest
  milvus-written  the new collections complete and checked, the live alias not yet moved
"""

import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the repository (qa)
sys.path.insert(0, str(HERE.parent))  # tests/ (conftest)

import qa.build  # noqa: E402
import qa.retriever  # noqa: E402
import qa.store.local.generations as generations  # noqa: E402
from conftest import FakeEmbedder  # noqa: E402

POINT = os.environ.get("QA_TEST_PAUSE_AT", "")


def pause(point: str) -> None:
    if point == POINT:
        print(f"PAUSED {point}", file=sys.stderr, flush=True)
        time.sleep(float(os.environ.get("QA_TEST_PAUSE_SECONDS", "120")))


class PausingEmbedder(FakeEmbedder):
    def encode_documents(self, texts, batch_size=32, show_progress=False):
        pause("embed")
        return super().encode_documents(texts, batch_size, show_progress)


def wrap(module, name, point, after=True, when=lambda *a: True):
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        if not after and when(*args):
            pause(point)
        result = original(*args, **kwargs)
        if after and when(*args):
            pause(point)
        return result

    setattr(module, name, wrapper)


embedder = PausingEmbedder()
qa.build.get_embedder = lambda name: embedder
qa.retriever.get_embedder = lambda name: embedder  # ask, serve and mcp answer with it too
wrap(generations, "finish_sqlite", "sqlite")
wrap(generations, "_fsync_tree", "fsync", after=False)
wrap(generations.os, "rename", "rename", when=lambda src, dst: Path(dst).name.startswith("gen-"))
wrap(generations, "_prune", "swap", after=False)
try:  # the milvus backend, when its extra is installed
    import qa.store.milvus.collections as milvus_collections

    wrap(milvus_collections, "insert_all", "milvus-rows", when=lambda conn, name, *a, **k: name.endswith("_sentences"))
    wrap(milvus_collections, "write_generation", "milvus-written")
except ImportError:
    pass

if __name__ == "__main__":
    from qa.frontends.cli import main

    os.environ.setdefault("QA_MODEL", FakeEmbedder.name)
    sys.exit(main(sys.argv[1:]))
