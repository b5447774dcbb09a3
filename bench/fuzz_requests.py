"""Request fuzzer against a live server: thousands of generated requests, no crash, no internal error.

Requests are generated from the proto descriptors (so a field added to the API is fuzzed too), field by
field from pools of hostile values: empty / huge / control-character / mixed-script strings, HTML and
markdown, odd ids, negative and 2^31 integers, NaN and infinities, unknown enum numbers, long repeated
fields. One request in five is then corrupted at the byte level (bit flips, truncation, inserted bytes,
invalid UTF-8) and sent raw. All nine RPCs are exercised, streams with 1-4 messages.

Pass criteria: the server process never dies; no call ends in INTERNAL, UNKNOWN or a deadline (a hang);
every OK response parses; the articles indexed before fuzzing are unchanged; after a graceful stop the
saved vector index holds exactly the store's vectors.

Hand-written rather than hypothesis: this is a bounded, seeded stream of network calls counted by
status, not a property to shrink; hypothesis drives the in-process property tests (tests/unit).

    python bench/fuzz_requests.py --requests 10000 --seed 1
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
from _server import ServerProcess, index_store_disagreement
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from rewrite_detector import Client
from rewrite_detector.v1 import detector_pb2 as pb

SERVICE = pb.DESCRIPTOR.services_by_name["RewriteDetector"]
WRITES = {"IndexArticle", "IndexArticles", "DeleteArticle"}
STATUS_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}
FAILURE_CODES = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED}
PROTECTED = {
    "protected-0": (
        "Quarterly profits at Northwind Traders rose 12 percent to 4.5 million euros.\n\n"
        "Chief executive Maria Lopez credited strong demand for its shipping services in Rotterdam."
    ),
    "protected-1": (
        "A storm closed schools across the northern valley on Friday.\n\n"
        "Officials said roads would reopen once snowploughs had cleared the main pass."
    ),
}


class Values:
    """Pools of hostile values, drawn with a seeded RNG."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        article = PROTECTED["protected-0"]
        self.texts = [
            "",
            " ",
            "\n\n\n",
            "\t \u3000\u00a0",
            "!!! ??? ... ---",
            "♥♥♥ ★★★ 🙂🙂",
            "\x00",
            "\x00\x01\x02\x1b[31m",
            article,
            PROTECTED["protected-1"],
            article.replace(" ", "\u200b "),
            article.upper(),
            article + "\x00" + article,
            "\n\n".join([article] * 20),
            "# Heading\n\n**bold** [link](http://x) `code`\n\n> quote\n\n- item\n- item",
            "<html><head><title>T</title></head><body><article><p>"
            + article
            + "</p></article></body></html>",
            "<p>unclosed <b>tags <script>alert(1)</script>",
            "<" * 1000,
            "\ud7ff\ue000\uffff\U0010ffff",
            "مرحبا بالعالم هذا نص عربي.\n\n這是中文。\n\nЭто русский текст.",
            "a\u0301" * 500,
            "\u202e" + article,
            "word " * 50_000,
            "".join(f"P{i}.\n\n" for i in range(3000)),
        ]
        self.ids = [
            "",
            " ",
            "a",
            "fuzz-1",
            "fuzz-2",
            "x" * 256,
            "x" * 257,
            "a\x00b",
            "tab\there",
            " padded ",
            "ünï-🙂",
            "../../etc/passwd",
            "'; DROP TABLE articles; --",
            "\u202eevil",
            "zero\u200bwidth",
        ]

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def text(self) -> str:
        if self.chance(0.003):
            return "y" * self.rng.choice([2 * 1024 * 1024 + 1, 3 * 1024 * 1024])  # over the text limit
        if self.chance(0.3):
            return self.random_string(self.rng.randint(0, 400))
        base = self.rng.choice(self.texts)
        if self.chance(0.2) and base:
            cut = self.rng.randrange(len(base))
            return base[:cut] + self.random_string(self.rng.randint(0, 20)) + base[cut:]
        return base

    def random_string(self, length: int) -> str:
        alphabets = [
            (0x20, 0x7E),
            (0x00, 0x1F),
            (0xA0, 0x2FF),
            (0x400, 0x4FF),
            (0x4E00, 0x4FFF),
            (0x1F300, 0x1F64F),
            (0xE000, 0xE0FF),
            (0x2000, 0x206F),
        ]
        out = []
        for _ in range(length):
            lo, hi = self.rng.choice(alphabets)
            out.append(chr(self.rng.randint(lo, hi)))
        if self.chance(0.3):
            out.extend(self.rng.choice([" ", "\n", "\n\n", ". "]) for _ in range(length // 8))
            self.rng.shuffle(out)
        return "".join(out)

    def article_id(self, protected: bool) -> str:
        if protected and self.chance(0.3):
            return self.rng.choice(sorted(PROTECTED))
        if self.chance(0.2):
            return self.random_string(self.rng.randint(1, 40))
        return self.rng.choice(self.ids)

    def string_for(self, name: str, protected: bool) -> str:
        if name in {"text", "submitted_text", "source_text"}:
            return self.text()
        if name in {"id", "source_ids"}:
            return self.article_id(protected)
        if name == "published_at":
            return self.rng.choice(
                ["", "2021-10-20", "2021-10-20T12:46:00+03:00", "2021-13-45", "yesterday", "9999-99-99Z"]
            )
        if name == "page_token":
            return self.rng.choice(["", "zz", "ff" * 300, "666f7a7a2d31", self.random_string(10)])
        return self.random_string(self.rng.randint(0, 30)) if self.chance(0.7) else self.text()

    def integer(self, bits: int) -> int:
        limit = 2 ** (bits - 1)
        return self.rng.choice(
            [0, 1, -1, 2, 5, 100, 101, 1000, 1001, 10**9, limit - 1, -limit, self.rng.randint(-50, 200)]
        )

    def floating(self) -> float:
        return self.rng.choice([0.0, 0.5, 1.0, 1.5, -0.1, -0.0, math.nan, math.inf, -math.inf, 1e-45, 3e38])


def fill(message: Message, values: Values, protected: bool, depth: int = 0) -> None:
    """Set a random subset of ``message``'s fields from the hostile pools (recursing into messages)."""
    for field in message.DESCRIPTOR.fields:
        if not values.chance(0.75):
            continue
        name = field.name
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            target = getattr(message, name)
            for _ in range(values.rng.choice([1, 2, 5, 50])):
                key = values.random_string(values.rng.randint(0, 12))
                target[key] = values.random_string(values.rng.randint(0, 60))
            continue
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if depth < 3:
                fill(getattr(message, name), values, protected, depth + 1)
                getattr(message, name).SetInParent()
            continue
        repeated = field.is_repeated
        count = values.rng.choice([0, 1, 2, 3, 10, 1001, 5000]) if repeated else 1
        generated = [scalar(field, values, protected) for _ in range(count)]
        try:
            if repeated:
                getattr(message, name).extend(generated)
            else:
                setattr(message, name, generated[0])
        except (ValueError, TypeError):
            pass  # protobuf refused the value client-side (e.g. an int out of range); not a server test


def scalar(field: FieldDescriptor, values: Values, protected: bool) -> Any:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return values.string_for(field.name, protected)
    if kind == FieldDescriptor.TYPE_BOOL:
        return values.chance(0.5)
    if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return values.floating()
    if kind == FieldDescriptor.TYPE_ENUM:
        numbers = [v.number for v in field.enum_type.values]
        return values.rng.choice([*numbers, -1, 99, 2**31 - 1])
    if kind in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64):
        return values.integer(64)
    if kind in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32):
        return values.integer(32)
    if kind in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return abs(values.integer(32))
    if kind in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return abs(values.integer(64))
    if kind == FieldDescriptor.TYPE_BYTES:
        return values.rng.randbytes(values.rng.randint(0, 64))
    raise ValueError(f"unhandled field type {kind} of {field.full_name}")


def corrupt(data: bytes, rng: random.Random) -> bytes:
    """Byte-level damage: flips, truncation, insertion, or a string made invalid UTF-8."""
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        how = rng.choice(["flip", "truncate", "insert", "utf8", "garbage"])
        if how == "flip" and buffer:
            buffer[rng.randrange(len(buffer))] ^= 1 << rng.randrange(8)
        elif how == "truncate" and buffer:
            del buffer[rng.randrange(len(buffer)) :]
        elif how == "insert":
            position = rng.randrange(len(buffer) + 1)
            buffer[position:position] = rng.randbytes(rng.randint(1, 16))
        elif how == "utf8":
            printable = [i for i, b in enumerate(buffer) if 0x61 <= b <= 0x7A]
            if printable:
                buffer[rng.choice(printable)] = rng.choice([0xFF, 0xC0, 0xED, 0x80])
        else:
            return rng.randbytes(rng.randint(0, 200))
    return bytes(buffer)


def generate(method: Any, values: Values, rng: random.Random) -> tuple[list[bytes], bool]:
    """The serialized request message(s) for one call, and whether they were corrupted."""
    request_class = getattr(pb, method.input_type.name)
    protected = method.name not in WRITES
    messages = []
    count = rng.randint(1, 4) if method.client_streaming else 1
    raw = rng.random() < 0.2
    for _ in range(count):
        message = request_class()
        fill(message, values, protected)
        data = message.SerializeToString()
        messages.append(corrupt(data, rng) if raw else data)
    return messages, raw


def call_raw(
    channel: grpc.Channel, method: Any, messages: list[bytes], timeout: float
) -> tuple[grpc.StatusCode, str, list[bytes]]:
    path = f"/{SERVICE.full_name}/{method.name}"
    try:
        if method.client_streaming:
            responses = list(channel.stream_stream(path)(iter(messages), timeout=timeout))
        else:
            responses = [channel.unary_unary(path)(messages[0], timeout=timeout)]
    except grpc.RpcError as err:
        return err.code(), err.details() or "", []
    return grpc.StatusCode.OK, "", responses


def check_responses(method: Any, responses: list[bytes], item_statuses: Counter[str]) -> list[str]:
    """Problems with OK responses: unparseable, or a stream item that failed internally."""
    problems = []
    response_class = getattr(pb, method.output_type.name)
    for data in responses:
        try:
            parsed = response_class.FromString(data)
        except DecodeError as err:
            problems.append(f"{method.name}: unparseable response: {err}")
            continue
        if method.server_streaming:  # streams report each item's status inside the item
            item_code = STATUS_BY_NUMBER.get(parsed.error_code, grpc.StatusCode.UNKNOWN)
            item_statuses[item_code.name] += 1
            if item_code in FAILURE_CODES:
                problems.append(f"{method.name} item: {item_code.name} {parsed.error_message}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=60.0, help="per call; hitting it counts as a hang")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    values = Values(rng)
    methods = list(SERVICE.methods)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fuzz-"))
    statuses: Counter[str] = Counter()
    by_method: Counter[str] = Counter()
    item_statuses: Counter[str] = Counter()
    failures: list[str] = []
    corrupted = 0
    crashes = 0
    options = [("grpc.max_send_message_length", 256 << 20), ("grpc.max_receive_message_length", 256 << 20)]
    started = time.monotonic()
    with ServerProcess(workdir / "data", workdir / "server.log") as server:
        server.start()
        with Client(server.target) as client:
            for article_id, text in PROTECTED.items():
                client.index_article(article_id, text)
        with grpc.insecure_channel(server.target, options=options) as channel:
            for n in range(args.requests):
                method = rng.choice(methods)
                messages, raw = generate(method, values, rng)
                corrupted += raw
                code, details, responses = call_raw(channel, method, messages, args.timeout)
                statuses[code.name] += 1
                by_method[method.name] += 1
                if code in FAILURE_CODES:
                    failures.append(f"#{n} {method.name} raw={raw}: {code.name} {details[:200]}")
                failures.extend(f"#{n} {f}" for f in check_responses(method, responses, item_statuses))
                if not server.alive():
                    crashes += 1
                    failures.append(f"#{n} {method.name}: server died\n{server.log_tail()}")
                    break
        survived = server.alive()
        if survived:
            with Client(server.target) as client:
                for article_id, text in PROTECTED.items():
                    if client.get_article(article_id).article.text != text:
                        failures.append(f"protected article {article_id} changed")
        exit_code = server.terminate() if survived else -1
    orphans, missing = index_store_disagreement(workdir / "data") if survived else (-1, -1)
    if orphans or missing:
        failures.append(f"index and store disagree after fuzzing: {orphans} orphans, {missing} missing")
    if exit_code != 0:
        failures.append(f"graceful stop exited with {exit_code}")
    internal = sum(c[k] for c in (statuses, item_statuses) for k in ("INTERNAL", "UNKNOWN"))
    report = {
        "requests": sum(statuses.values()),
        "corrupted_requests": corrupted,
        "crashes": crashes,
        "internal_errors": internal,
        "hangs": statuses["DEADLINE_EXCEEDED"],
        "statuses": dict(statuses.most_common()),
        "stream_item_statuses": dict(item_statuses.most_common()),
        "by_method": dict(sorted(by_method.items())),
        "failures": failures[:20],
        "seconds": round(time.monotonic() - started, 1),
        "seed": args.seed,
        "server_log": str(workdir / "server.log"),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(
            f"{report['requests']} requests ({corrupted} corrupted at the byte level) in "
            f"{report['seconds']} s: {crashes} crashes, {internal} internal errors, {report['hangs']} hangs"
        )
        print("statuses: " + ", ".join(f"{k} {v}" for k, v in report["statuses"].items()))
        items = report["stream_item_statuses"].items()
        print("stream items: " + ", ".join(f"{k} {v}" for k, v in items))
        print("per method: " + ", ".join(f"{k} {v}" for k, v in report["by_method"].items()))
        for failure in report["failures"]:
            print(f"FAILURE {failure}")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
