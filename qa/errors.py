"""Errors the library raises; every message says what to do next. Front ends turn them into words."""


class QAError(Exception):
    """Base class of every error `qa` raises on purpose. `exit_code` is what the CLI exits with,
    `http_status` what an HTTP front end answers with."""

    exit_code = 1
    http_status = 500


class BadInput(QAError, ValueError):
    """The caller's input (question, k, a path or option) cannot be used as given."""

    exit_code = 2
    http_status = 400


class RequestTooLarge(BadInput):
    """A request body (or a question) larger than the documented caps (qa.limits)."""

    http_status = 413


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


class DiskFull(IndexUnwritable):
    """Not enough free space to write the index; the message says how much is needed."""


class IndexLocked(QAError):
    """Another build holds the index lock."""


class ModelUnavailable(QAError):
    """The embedding model cannot be loaded (not installed, wrong name, no network)."""


class StoreUnavailable(QAError):
    """The index store cannot be reached or used (a server down, credentials refused, an extra not installed)."""


class NotAnIndex(BadInput):
    """The index folder holds files that are not a qa index: qa will not build (or delete) there."""
