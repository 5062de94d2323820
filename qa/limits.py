"""Input caps shared by every front end (CLI, Python, the web chat, HTTP APIs).

The caps are constants in `qa.config` (MAX_QUESTION_CHARS, MAX_K, MAX_SOURCES,
MAX_SOURCE_PATTERN_CHARS, MAX_BODY_BYTES) and are documented in the README. Each check raises a
`BadInput` (CLI exit 2, HTTP 400) or `RequestTooLarge` (HTTP 413) whose message says the cap.
"""

from __future__ import annotations

from typing import Sequence

from .config import MAX_BODY_BYTES, MAX_K, MAX_QUESTION_CHARS, MAX_SOURCE_PATTERN_CHARS, MAX_SOURCES
from .errors import BadInput, EmptyQuestion, RequestTooLarge


def check_question(question) -> str:
    """The question, stripped.

    Raises:
        EmptyQuestion: None, not text, empty or whitespace.
        RequestTooLarge: longer than MAX_QUESTION_CHARS characters.
    """
    if not isinstance(question, str) or not question.strip():
        raise EmptyQuestion("The question is empty: write one between quotes, e.g. qa ask \"What is the refund policy?\"")
    question = question.strip()
    if len(question) > MAX_QUESTION_CHARS:
        raise RequestTooLarge(
            f"The question is {len(question):,} characters long; the limit is {MAX_QUESTION_CHARS:,}. "
            "Ask a shorter question (a sentence or two works best)."
        )
    return question


def check_k(k) -> int:
    """k as an int in 1..MAX_K. Raises BadInput for anything else."""
    message = f"k must be a whole number from 1 to {MAX_K}, not {k!r}."
    if isinstance(k, bool):
        raise BadInput(message)
    try:
        value = int(k)
    except (TypeError, ValueError, OverflowError):  # OverflowError: float("inf")
        raise BadInput(message) from None
    is_whole = isinstance(k, str) or value == k  # "5" and 5.0 are fine, 2.5 is not
    if not is_whole or not 1 <= value <= MAX_K:
        raise BadInput(message)
    return value


def check_sources(sources) -> list[str] | None:
    """The non-empty patterns of a source filter (None: no filter).

    Raises:
        BadInput: not a string or a list of strings, more than MAX_SOURCES patterns, or a
            pattern longer than MAX_SOURCE_PATTERN_CHARS.
    """
    if sources is None:
        return None
    if isinstance(sources, str):
        sources = [sources]
    if not isinstance(sources, (list, tuple)) or not all(isinstance(s, str) for s in sources):
        raise BadInput("sources must be a list of file patterns (globs or parts of paths).")
    if len(sources) > MAX_SOURCES:
        raise BadInput(
            f"{len(sources)} source patterns given; the limit is {MAX_SOURCES}. Use a glob such as 'reports/*.pdf'."
        )
    for pattern in sources:
        if len(pattern) > MAX_SOURCE_PATTERN_CHARS:
            raise BadInput(
                f"A source pattern is {len(pattern):,} characters long; the limit is {MAX_SOURCE_PATTERN_CHARS:,}."
            )
    patterns = [s for s in sources if s.strip()]
    return patterns or None


def check_body_size(n_bytes: int | None) -> None:
    """Refuse an HTTP request body over MAX_BODY_BYTES (call with its Content-Length or the
    number of bytes read so far).

    Raises:
        RequestTooLarge: HTTP 413.
    """
    if n_bytes is not None and n_bytes > MAX_BODY_BYTES:
        raise RequestTooLarge(
            f"The request body is {n_bytes:,} bytes; the limit is {MAX_BODY_BYTES:,}. Send a shorter question."
        )


def validate_request(question, k=5, sources: Sequence[str] | str | None = None, body_bytes: int | None = None):
    """Check one question request as every front end receives it.

    Returns:
        (question stripped, k as int, source patterns or None).
    Raises:
        BadInput (HTTP 400) or RequestTooLarge (HTTP 413); the message names the cap.
    """
    check_body_size(body_bytes)
    return check_question(question), check_k(k), check_sources(sources)
