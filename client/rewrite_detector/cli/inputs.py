"""Reading what the CLI sends: single files, directories, JSONL and stdin.

``plan_index`` validates everything up front (so a bad JSONL line fails before anything is sent) and counts
the articles for the progress bar; ``iter_articles`` then reads the sources again, one article at a time,
so a large corpus is never held in memory.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewrite_detector.cli._common import InputError

DASH = "-"
JSONL_SUFFIX = ".jsonl"
# What a directory contributes, searched recursively (hidden files and directories are skipped).
DIRECTORY_SUFFIXES = frozenset({".txt", ".md", ".html", JSONL_SUFFIX})
_OPTIONAL_STRING_FIELDS = ("title", "url", "published_at")


@dataclass(frozen=True)
class Source:
    """One input of ``index``: a text file (one article), a JSONL file (many) or stdin (one)."""

    kind: str  # "file" | "jsonl" | "stdin"
    path: Path | None = None
    article_id: str | None = None
    text: str | None = None  # stdin only: read once, during planning
    count: int = 1
    published_at: str | None = None  # --published-at, single file or stdin only


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not valid UTF-8 (byte {err.start})") from err
    except OSError as err:
        raise InputError(f"{path}: {err.strerror or err}") from err


def read_stdin() -> str:
    data = sys.stdin.read()
    if isinstance(data, bytes):  # pragma: no cover - some test runners hand bytes
        data = data.decode("utf-8")
    return data


def read_input(name: str) -> str:
    """The text of a file, or of stdin for ``-`` (``check`` and ``compare``)."""
    if name == DASH:
        return read_stdin()
    path = Path(name)
    if path.is_dir():
        raise InputError(f"{name}: is a directory, expected a file")
    if not path.exists():
        raise InputError(f"{name}: no such file")
    return read_text(path)


def _directory_files(directory: Path) -> list[Path]:
    found = []
    for path in directory.rglob("*"):
        relative = path.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.suffix.lower() in DIRECTORY_SUFFIXES and path.is_file():
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(directory).as_posix())


def _file_source(path: Path, article_id: str | None = None) -> Source:
    if path.suffix.lower() == JSONL_SUFFIX:
        if article_id is not None:
            raise InputError(f"--id cannot be used with a JSONL file ({path}): each line carries its id")
        return Source(kind="jsonl", path=path, count=sum(1 for _ in _jsonl_articles(path)))
    return Source(kind="file", path=path, article_id=article_id or path.stem)


def plan_index(
    names: Sequence[str], article_id: str | None = None, published_at: str | None = None
) -> list[Source]:
    """Validate the ``index`` arguments and list the sources, in order.

    Rules: ``--id`` and ``--published-at`` only with a single (non-JSONL) file or with ``-``; ``-`` (stdin,
    one article) needs ``--id``; two files may not map to the same id; every JSONL line is parsed and
    checked now.
    """
    if not names:
        raise InputError("nothing to index: give files, directories, JSONL files or -")
    if article_id is not None and len(names) != 1:
        raise InputError("--id can only be used with a single file")
    if DASH in names and article_id is None:
        raise InputError("reading an article from stdin (-) needs --id")
    if article_id is not None and not article_id.strip():
        raise InputError("--id must not be empty")

    sources: list[Source] = []
    for name in names:
        if name == DASH:
            sources.append(Source(kind="stdin", article_id=article_id, text=read_stdin()))
            continue
        path = Path(name)
        if path.is_dir():
            if article_id is not None:
                raise InputError(f"--id can only be used with a single file, {name} is a directory")
            sources.extend(_file_source(p) for p in _directory_files(path))
        elif path.is_file():
            sources.append(_file_source(path, article_id))
        else:
            raise InputError(f"{name}: no such file or directory")

    seen: dict[str, Path] = {}
    for source in sources:
        if source.kind == "file" and source.path is not None and source.article_id is not None:
            earlier = seen.setdefault(source.article_id, source.path)
            if earlier != source.path:
                raise InputError(
                    f"two files would be indexed under the same id {source.article_id!r}: "
                    f"{earlier} and {source.path} (ids are file stems; rename one or use JSONL)"
                )
    if sum(s.count for s in sources) == 0:
        raise InputError(f"nothing to index in {', '.join(names)} (looked for *.txt, *.md, *.html, *.jsonl)")
    if published_at is not None:
        single = len(names) == 1 and len(sources) == 1 and (names[0] == DASH or not Path(names[0]).is_dir())
        if not single or sources[0].kind == "jsonl":
            raise InputError(
                "--published-at can only be used with a single file or - (JSONL lines carry their own "
                "published_at)"
            )
        sources = [dataclasses.replace(sources[0], published_at=published_at)]
    return sources


def _string_field(record: dict[str, Any], field: str, where: str) -> str:
    value = record.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f"{where}: field {field!r} must be a string")
    return value


def parse_jsonl_line(line: str, where: str) -> dict[str, Any] | None:
    """One JSONL record -> an article dict (``None`` for a blank line). ``where`` is ``path:line``.

    Needs non-empty string ``id`` and ``text``; optional ``title``, ``url``, ``published_at`` (strings)
    and ``metadata`` (an object of scalars, converted to strings). Other fields are ignored.
    """
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise InputError(f"{where}: invalid JSON ({err.msg})") from err
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected a JSON object with 'id' and 'text'")
    for field in ("id", "text"):
        value = record.get(field)
        if not isinstance(value, str) or not value.strip():
            problem = "missing" if value is None else "empty or not a string:"
            raise InputError(f"{where}: {problem} {field!r}")
    article: dict[str, Any] = {"id": record["id"], "text": record["text"]}
    for field in _OPTIONAL_STRING_FIELDS:
        article[field] = _string_field(record, field, where)
    metadata = record.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise InputError(f"{where}: 'metadata' must be an object")
        converted = {}
        for key, value in metadata.items():
            if isinstance(value, (dict, list)):
                raise InputError(f"{where}: metadata value {key!r} must be a string, number or boolean")
            converted[str(key)] = value if isinstance(value, str) else json.dumps(value)
        article["metadata"] = converted
    return article


def _jsonl_articles(path: Path) -> Iterator[dict[str, Any]]:
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                article = parse_jsonl_line(line, f"{path}:{number}")
                if article is not None:
                    yield article
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not valid UTF-8 (byte {err.start})") from err
    except OSError as err:
        raise InputError(f"{path}: {err.strerror or err}") from err


def iter_articles(sources: Sequence[Source]) -> Iterator[dict[str, Any]]:
    """The articles of planned sources as dicts with Article's field names, in order."""
    for source in sources:
        dated = {"published_at": source.published_at} if source.published_at is not None else {}
        if source.kind == "stdin":
            yield {"id": source.article_id, "text": source.text or "", **dated}
        elif source.kind == "jsonl" and source.path is not None:
            yield from _jsonl_articles(source.path)
        elif source.path is not None:
            yield {"id": source.article_id, "text": read_text(source.path), **dated}
