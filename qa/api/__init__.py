"""Compatibility: the names `qa.api` had before the stages were split. Building lives in
`qa.build`, querying in `qa.retriever`; new code imports from there (or from `qa`)."""

from ..build import (
    BuildReport,
    build_index,
    corpus_changes,
    encode_sorted,
    ensure_index,
    full_rebuild_reason,
    index_state,
    raise_model_mismatch,
    watch,
)
from ..retriever import (
    MAX_K,
    MAX_QUESTION_CHARS,
    Retriever,
    ask,
    check_k,
    check_question,
    default_retriever,
    read_source,
    retrieve,
)

__all__ = [
    "BuildReport", "MAX_K", "MAX_QUESTION_CHARS", "Retriever", "ask", "build_index", "check_k", "check_question",
    "corpus_changes", "default_retriever", "encode_sorted", "ensure_index", "full_rebuild_reason", "index_state",
    "raise_model_mismatch", "read_source", "retrieve", "watch",
]
