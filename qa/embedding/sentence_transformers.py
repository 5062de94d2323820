"""EMBED with sentence-transformers: `SentenceTransformerEmbedder` (the real `Embedder`) and
`get_embedder`.
Given a `cache_dir` (the index folder's `.cache/`), texts are embedded by the same model exported
to ONNX (`qa.embedding.onnx`), so neither `qa ask` nor a rebuild imports torch; sentence_transformers
(and torch) is imported only to export the model once per model version, or for a model that
cannot be exported (the reason is logged and the torch path is used).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..config import DEFAULT_MODEL
from ..errors import ModelUnavailable
from .base import check_model, normalize, resolve_model

log = logging.getLogger(__name__)

class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded on first use.

    Args:
        name: model name (a local folder, a cached hub name, or all-MiniLM-L6-v2 = bundled copy).
        device: torch device; CPU unless said otherwise.
    """

    persistent_cache = True  # builds keep its vectors in the shared embedding cache (qa.embedding.cache)

    def __init__(self, name: str = DEFAULT_MODEL, device: str = "cpu", cache_dir: str | Path | None = None):
        self.name = name
        self.device = device
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._model = None
        self._query = None  # OnnxEncoder once loaded, False when ONNX is not used

    @property
    def model(self):
        if self._model is None:
            location = resolve_model(self.name)
            # A local folder: never let a library try the hub for it.
            local = location != self.name or Path(location).exists()
            try:
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(location, device=self.device, local_files_only=local)
            except ImportError as exc:
                raise ModelUnavailable(
                    "sentence-transformers is not installed: `pip install sentence-transformers`."
                ) from exc
            except Exception as exc:  # the library raises OSError, ValueError, HF errors...
                raise ModelUnavailable(
                    f"Could not load the embedding model {self.name!r} ({type(exc).__name__}: {exc}). "
                    "Set QA_MODEL (or --model) to an installed sentence-transformers model's "
                    "name or local path."
                ) from exc
        return self._model

    def use_cache_dir(self, cache_dir: str | Path) -> None:
        """Keep (and look for) the ONNX export in `cache_dir`, the index folder's cache. An
        encoder already loaded from another index's cache is copied there (the export is keyed
        by model identity, so it is the same file), so that index's `qa ask` finds it."""
        cache_dir = Path(cache_dir)
        if self.cache_dir == cache_dir:
            return
        self.cache_dir = cache_dir
        if self._query:
            from .onnx import UnsupportedModel, load_or_export

            try:
                self._query = load_or_export(
                    self.name, resolve_model(self.name), cache_dir, lambda: self.model, reuse=self._query.folder
                )
            except UnsupportedModel as exc:  # pragma: no cover - it was exported once already
                log.warning("Texts for %s are embedded with torch, not ONNX: %s", self.name, exc)
                self._query = False

    def query_encoder(self):
        """The ONNX encoder (exported into `self.cache_dir` first if needed), or None when there
        is no cache folder or the model cannot be exported (the reason is logged once)."""
        if self._query is None and self.cache_dir is not None:
            from .onnx import UnsupportedModel, load_or_export

            try:
                self._query = load_or_export(self.name, resolve_model(self.name), self.cache_dir, lambda: self.model)
            except UnsupportedModel as exc:
                log.warning("Texts for %s are embedded with torch, not ONNX: %s", self.name, exc)
                self._query = False
        return self._query or None

    @property
    def dim(self) -> int:
        if self._model is None and self.query_encoder() is not None:
            return self._query.dim
        model = self.model
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get_dim())

    def encode_documents(self, texts, batch_size: int = 32, show_progress: bool = False) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, self.dim), dtype=np.float32)
        encoder = self.query_encoder()
        if encoder is not None:  # same vectors (checked at export), faster than torch, no torch import
            return encoder.encode(list(texts), batch_size=batch_size)
        vectors = self.model.encode(
            list(texts),
            batch_size=batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return normalize(vectors)

    def encode_queries(self, texts) -> np.ndarray:
        encoder = self.query_encoder()
        if encoder is not None:
            return encoder.encode(list(texts))
        return self.encode_documents(texts, batch_size=32)


@lru_cache(maxsize=4)
def get_embedder(name: str = DEFAULT_MODEL) -> SentenceTransformerEmbedder:
    """The embedder for model `name`, created once per process and reused (the model itself
    loads on first use).

    Raises:
        ModelUnavailable: no such model on this machine (see `check_model`).
    """
    check_model(name)
    return SentenceTransformerEmbedder(name)
