"""qa: local, citation-first question answering over your documents.

    >>> import qa
    >>> for p in qa.retrieve("Who leads the NCRI?", k=3):
    ...     print(p.citation, p.section, p.score)

Importing qa loads no model and none of torch, sentence_transformers, faiss or gradio.
"""

from ._version import __version__
from .build import BuildReport, build_index
from .retriever import Retriever, ask, retrieve
from .config import ChunkSettings, Settings
from .errors import (
    BadInput,
    CorpusEmpty,
    DiskFull,
    EmptyQuestion,
    IndexCorrupt,
    IndexLocked,
    IndexMismatch,
    IndexMissing,
    IndexUnwritable,
    ModelUnavailable,
    QAError,
    RequestTooLarge,
)
from .schema import Answer, Document, Hit, Passage, Span

__all__ = [
    "Answer",
    "BadInput",
    "BuildReport",
    "ChunkSettings",
    "CorpusEmpty",
    "DiskFull",
    "Document",
    "EmptyQuestion",
    "Hit",
    "IndexCorrupt",
    "IndexLocked",
    "IndexMismatch",
    "IndexMissing",
    "IndexUnwritable",
    "ModelUnavailable",
    "Passage",
    "QAError",
    "RequestTooLarge",
    "Retriever",
    "Settings",
    "Span",
    "ask",
    "build_index",
    "retrieve",
]
