"""Score a corpus of submissions against a running rewrite-detector server, from a script.

    python examples/batch_score.py submissions.jsonl scores.csv --server 127.0.0.1:50051

The input is JSONL, CSV, Parquet or a directory of .txt/.md/.html files (see ``rewrite_detector.batch``);
the output (JSONL or CSV) gets one row per article and doubles as the resume state: run the script again
after an interruption and only the articles not yet in it are sent. At the end it lists the submissions a
moderator should look at: rewrites and near-duplicates whose source is not newer than the submission.
"""

from __future__ import annotations

import argparse

from rewrite_detector import Client
from rewrite_detector.batch import BatchRow, run_batch

COPY_VERDICTS = frozenset({"NEAR_DUPLICATE", "REWRITE"})


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("input", help="JSONL, CSV, Parquet file or directory of articles")
    parser.add_argument("output", help="scores file (.jsonl or .csv); existing rows are kept and skipped")
    parser.add_argument("--server", default=None, help="HOST:PORT (default: $REWRITE_DETECTOR_SERVER)")
    parser.add_argument("--streams", type=int, default=2, help="CheckStream calls side by side")
    parser.add_argument("--in-flight", type=int, default=8, help="requests ahead on each stream")
    args = parser.parse_args()

    flagged: list[BatchRow] = []

    def keep_copies(row: BatchRow) -> None:
        # A "source" published after the submission is more likely the copy than the original.
        if row.verdict in COPY_VERDICTS and not row.source_is_newer:
            flagged.append(row)

    with Client(args.server) as client:
        client.wait_ready(timeout=30)
        summary = run_batch(
            client,
            args.input,
            args.output,
            streams=args.streams,
            in_flight=args.in_flight,
            on_row=keep_copies,
        )

    print(
        f"{summary.scored} scored, {summary.skipped} already done, {summary.failed} failed "
        f"in {summary.elapsed_seconds:.1f} s ({summary.rate:.1f}/s)"
    )
    for verdict, count in summary.verdicts.most_common():
        print(f"  {verdict:<15} {count}")
    if flagged:
        print("to review (this run):")
        for row in sorted(flagged, key=lambda r: r.score, reverse=True):
            scores = f"score {row.score:.2f}, coverage {row.coverage:.0%}"
            print(f"  {row.id}: {row.verdict} of {row.top_source} ({scores})")


if __name__ == "__main__":
    main()
