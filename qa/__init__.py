"""qa: local, citation-first question answering over your documents.

    >>> import qa
    >>> for p in qa.retrieve("Who leads the NCRI?", k=3):
    ...     print(p.citation, p.section, p.score)

Importing qa loads no model and none of torch, sentence_transformers, faiss or gradio.
"""

__version__ = "0.1.0"

from .api import BuildReport, Retriever, ask, build_index, retrieve  # noqa: E402
from .config import ChunkSettings, Settings  # noqa: E402
from .errors import (  # noqa: E402
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
from .schema import Answer, Document, Hit, Passage, Span  # noqa: E402

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
