"""Lazy imports: `import qa`, `qa --help` and (index built) `qa ask` stay light. Each runs in a
fresh interpreter, which then reports which heavy modules it loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ["torch", "sentence_transformers", "transformers", "gradio", "faiss", "onnxruntime", "fastapi", "uvicorn",
         "starlette", "mcp", "pydantic"]
REPORT = f"import json, sys; print('\\nLOADED=' + json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"


def _loaded(code: str, env: dict | None = None) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\n{REPORT}"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.rsplit("LOADED=", 1)[1])


def test_import_qa_loads_no_heavy_module():
    assert _loaded("import qa") == []


def test_help_loads_no_heavy_module():
    code = "from qa.frontends.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    assert _loaded(code) == []


def test_ask_help_loads_no_heavy_module():
    code = "from qa.frontends.cli import main\ntry:\n    main(['ask', '--help'])\nexcept SystemExit:\n    pass"
    assert _loaded(code) == []


def test_mcp_and_serve_help_load_no_heavy_module():
    for command in ("mcp", "serve"):
        code = f"from qa.frontends.cli import main\ntry:\n    main([{command!r}, '--help'])\nexcept SystemExit:\n    pass"
        assert _loaded(code) == [], command


@pytest.mark.model
def test_ask_with_a_built_index_imports_neither_torch_nor_sentence_transformers(tmp_path, real_embedder):
    from qa.build import build_index
    from qa.config import Settings

    settings = Settings(corpus_dir=ROOT / "corpus", index_dir=tmp_path / "index")
    build_index(settings, embedder=real_embedder)
    code = (
        "import io, contextlib\nfrom qa.frontends.cli import main\nbuf = io.StringIO()\n"
        f"with contextlib.redirect_stdout(buf):\n    rc = main(['ask', 'Who leads the NCRI?', '--json', "
        f"'--index', {str(settings.index_dir)!r}, '--corpus', {str(settings.corpus_dir)!r}])\n"
        "assert rc == 0, rc\nanswer = json.loads(buf.getvalue())\n"
        "print('ANSWER=' + answer['answer']['text'])"
    )
    env = {"QA_MODEL": "", "HF_HUB_OFFLINE": "1"}
    full = subprocess.run(
        [sys.executable, "-c", f"import json\n{code}\n{REPORT}"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT), **env}, cwd=ROOT, timeout=300,
    )
    assert full.returncode == 0, full.stderr
    assert "ANSWER=" in full.stdout and "Maryam Rajavi" in full.stdout.split("ANSWER=")[1].splitlines()[0]
    loaded = json.loads(full.stdout.rsplit("LOADED=", 1)[1])
    assert loaded == ["faiss", "onnxruntime"]


def test_opening_an_index_and_scoring_bm25_import_neither_bm25s_nor_scipy(settings, fake_embedder):
    """bm25s's package imports scipy (seconds on a loaded machine): the open index reads its BM25
    arrays with numpy alone and the tokenizer reads bm25s's stop-word lists without the package."""
    from qa.build import build_index

    build_index(settings, embedder=fake_embedder)
    code = (
        "import numpy as np\nfrom qa.lexical import tokenize\nfrom qa.store.local.generations import load_index\n"
        f"reader = load_index({str(settings.index_dir)!r})\n"
        "rows, scores = reader.bm25_search(tokenize('When are the roses watered?', content_only=True), 3)\n"
        "assert len(rows) and scores[0] > 0, (rows, scores)\n"
        "assert len(reader.search(reader.passage_vectors(np.array([0]))[0], 2)[0]) == 2\n"
        "print('\\nLOADED=' + json.dumps(sorted(m for m in ('bm25s', 'scipy') if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", f"import json, sys\n{code}"], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.rsplit("LOADED=", 1)[1]) == []
