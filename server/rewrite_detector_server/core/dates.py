"""Publication dates: which of two articles came first.

Callers send ISO 8601 in whatever precision and zone they have ("2021-10-20", "2021-10-20T12:46:00+03:00",
"2021-10-20T09:46:00Z"); comparing those strings as text is wrong as soon as the zones or precisions
differ, so they are parsed with ``datetime.fromisoformat`` (stdlib; ISO 8601 in Python >= 3.11, plus a
``Z`` shim for 3.10) and compared as instants, or as calendar days when either side has no time.
"""

from __future__ import annotations

import datetime as dt

from rewrite_detector_server.errors import InvalidInputError

__all__ = ["is_newer", "parse_published_at", "validate_published_at"]

PublishedAt = dt.date | dt.datetime


def parse_published_at(value: str) -> PublishedAt | None:
    """A date (no time given) or a datetime (aware; no offset = UTC); ``None`` if not ISO 8601."""
    text = value.strip()
    if not text:
        return None
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        if len(text) <= 10 and "T" not in text.upper():
            return dt.date.fromisoformat(text)
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.timezone.utc)


def validate_published_at(value: str, what: str) -> str:
    """``value`` unchanged if empty or ISO 8601; INVALID_ARGUMENT otherwise."""
    if value and parse_published_at(value) is None:
        raise InvalidInputError(
            f"{what} {value!r} is not an ISO 8601 date: use e.g. 2021-10-20 or 2021-10-20T12:46:00+03:00"
        )
    return value


def is_newer(source_published_at: str, submitted_published_at: str) -> bool:
    """True when both dates are known and the source was published after the submission.

    When both carry a time they compare as instants; when either is a bare date, by calendar day (in the
    datetime's own zone): a same-day pair is never "newer", since which came first is unknown.
    """
    source = parse_published_at(source_published_at)
    submitted = parse_published_at(submitted_published_at)
    if source is None or submitted is None:
        return False
    if isinstance(source, dt.datetime) and isinstance(submitted, dt.datetime):
        return source > submitted
    return _day(source) > _day(submitted)


def _day(value: PublishedAt) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value
