"""EMBED: `base` (the `Embedder` protocol, model location, `embedding_text`),
`sentence_transformers` (the real embedder, `get_embedder`), `onnx` (the same model exported to
ONNX, so that queries and builds run without torch). Nothing here imports torch at import time."""

from .base import Embedder, bundled_model_path, check_model, embedding_text, normalize, resolve_model
from .sentence_transformers import SentenceTransformerEmbedder, get_embedder

__all__ = [
    "Embedder", "SentenceTransformerEmbedder", "bundled_model_path", "embedding_text", "get_embedder",
    "normalize", "resolve_model",
]
