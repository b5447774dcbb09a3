"""Where the document-level ROC-AUC of an eval_pan.py run loses, from the per-pair details of its --out JSON.

    python bench/auc_loss.py bench/out/pan_full_pair_stop17c.json [--mode pair] [--top 20]

1 − AUC is the share of (derived, case-free) pairs ranked the wrong way round, ties counting one half.
This splits it by the case-free pairs that cause it (the three parts add up to the loss, see
`evaluation/doclevel.py`'s `auc_loss`):
- case-free pairs at score 0, tied with the derived pairs at 0 (nothing aligned on either);
- case-free pairs with a reported detection (each outranks every derived pair scoring less);
- case-free pairs scored above 0 by context (WEAK) evidence only;
and lists the costliest case-free pairs. Reads the JSON only: no model, no corpus.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rewrite_detector_server.evaluation.doclevel import auc_loss


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", type=Path, help="an eval_pan.py --out JSON")
    parser.add_argument("--mode", default="pair", choices=("pair", "retrieval"))
    parser.add_argument("--top", type=int, default=20, help="costliest case-free pairs to list")
    args = parser.parse_args()
    run = json.loads(args.run.read_text(encoding="utf-8"))
    details = run.get("details", {}).get(args.mode)
    if not details:
        parser.error(f"{args.run} has no per-pair details for mode {args.mode!r}")
    labels = [bool(row["cases"]) for row in details]
    scores = [float(row["score"]) for row in details]
    loss = auc_loss(labels, scores, [bool(row["detections"]) for row in details])
    if loss is None:
        parser.error("the run has no derived or no case-free pairs: the AUC is undefined")
    costly = sorted(
        ((row, cost) for row, cost in zip(details, loss.costs, strict=True) if cost is not None),
        key=lambda item: item[1],
        reverse=True,
    )
    summary = {
        "run": str(args.run),
        "commit": run.get("git_commit"),
        "derived_pairs": sum(labels),
        "case_free_pairs": len(labels) - sum(labels),
        "auc": round(1.0 - loss.loss, 4),
        "loss": round(loss.loss, 4),
        "loss_case_free_tied_at_zero": round(loss.negatives_tied_at_zero, 4),
        "loss_case_free_with_detections": round(loss.negatives_detected, 4),
        "loss_case_free_context_only": round(loss.negatives_context_only, 4),
        "derived_at_zero": sum(1 for y, s in zip(labels, scores, strict=True) if y and s == 0.0),
        "case_free_at_zero": sum(1 for y, s in zip(labels, scores, strict=True) if not y and s == 0.0),
        "case_free_with_detections": sum(1 for row in details if not row["cases"] and row["detections"]),
        "costliest_case_free": [
            {
                "suspicious": row["suspicious"],
                "source": row["source"],
                "label": row["label"],
                "score": round(row["score"], 4),
                "verdict": row["verdict"],
                "detections": len(row["detections"]),
                "auc_loss": round(cost, 5),
            }
            for row, cost in costly[: args.top]
        ],
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
