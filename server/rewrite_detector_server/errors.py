"""Domain errors. The servicer maps each class to one gRPC status; nothing here knows about gRPC."""


class DetectorError(Exception):
    """Base class; the message is shown to the caller and must say what to change."""


class InvalidInputError(DetectorError):
    """The request cannot be served as given (empty text, bad id, bad option): INVALID_ARGUMENT."""


class NotFoundError(DetectorError):
    """An id names no indexed article: NOT_FOUND."""


class TooLargeError(DetectorError):
    """The input exceeds a configured limit: RESOURCE_EXHAUSTED."""


class IncompatibleIndexError(DetectorError):
    """The data directory was built with another model or dimension: FAILED_PRECONDITION."""


class IndexUnavailableError(DetectorError):
    """The vector index backend (a Milvus server) failed or cannot be reached: UNAVAILABLE, retry later."""


class StoreUnavailableError(IndexUnavailableError):
    """The shared article store (PostgreSQL) failed or cannot be reached: UNAVAILABLE, retry later.

    A subclass of ``IndexUnavailableError`` because callers see the same thing — the data the answer
    needs cannot be read now, retrying may help — and every place that maps or reports that one
    (gRPC status, CLI exit code) then covers this one too."""
