"""Errors the library raises; every message says what to do next. Front ends turn them into words."""


class QAError(Exception):
    """Base class of every error `qa` raises on purpose. `exit_code` is what the CLI exits with."""

    exit_code = 1


class BadInput(QAError, ValueError):
    """The caller's input (question, k, a path or option) cannot be used as given."""

    exit_code = 2


class EmptyQuestion(BadInput):
    """The question is empty or only whitespace."""


class CorpusEmpty(QAError):
    """The corpus folder is missing or holds no readable document."""


class IndexMissing(QAError):
    """No usable index in the index directory."""


class IndexMismatch(QAError):
    """The index was built with another model or other settings than the ones asked for."""


class IndexCorrupt(QAError):
    """A file of the index is missing, truncated or unreadable."""


class IndexUnwritable(QAError):
    """The index folder cannot be created or written."""


class IndexLocked(QAError):
    """Another build holds the index lock."""


class ModelUnavailable(QAError):
    """The embedding model cannot be loaded (not installed, wrong name, no network)."""


class NotAnIndex(BadInput):
    """The index folder holds files that are not a qa index: qa will not build (or delete) there."""
