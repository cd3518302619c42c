"""``python -m detectors REFERENCE CURRENT``: the standalone drift check, without the server.

Same engine and JSON as ``loopwatch drift`` (which ``api/cli.py`` wires to
:func:`detectors.table_drift.compare_tables`). Imports stay lean — no pandas, no scipy on
the default path — because process start is part of what CI pays per call.
Exit status: 0 no dataset drift, 1 dataset drift, 2 usage or input error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any


def format_table(result: dict[str, Any]) -> str:
    """Plain-text table of a ``compare_tables`` result."""
    header = ("column", "kind", "method", "score", "threshold", "drifted")
    rows = [
        (
            c["column"], c["kind"], c["method"],
            "-" if c["score"] is None else f"{c['score']:.6g}",
            f"{c['threshold']:g}", "yes" if c["drifted"] else "no",
        )
        for c in result["columns"]
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]
    for item in result.get("skipped", []):
        lines.append(f"skipped {item['column']}: {item['reason']}")
    rule = "calibrated rule (effect over its floor and a test after BH)" if result.get("rule") else "Evidently 0.7 rule"
    lines.append(
        f"\n{result['drifted_columns']} of {len(rows)} columns drifted (share {result['share']:.2f}); "
        f"dataset drift: {'yes' if result['dataset_drift'] else 'no'} — {rule}"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m detectors", description="Column drift between two files.")
    parser.add_argument("reference", help="reference Parquet or CSV file")
    parser.add_argument("current", help="current Parquet or CSV file")
    parser.add_argument("--columns", help="comma-separated columns (default: all supported)")
    parser.add_argument("--method", help="force a drift method (e.g. ks, psi, jensenshannon)")
    parser.add_argument("--threshold", type=float, help="override the method's threshold")
    parser.add_argument("--format", choices=("json", "table"), default="table")
    parser.add_argument(
        "--compat", choices=("evidently",), help="reproduce Evidently 0.7's verdicts instead of the calibrated rule"
    )
    args = parser.parse_args(argv)

    from detectors.table_drift import compare_tables, open_table

    columns = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
    try:
        reference = open_table(args.reference)
        current = open_table(args.current)
        result = compare_tables(
            reference, current, columns, args.method, threshold=args.threshold, compat=args.compat
        )
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps(result))
    else:
        print(format_table(result))
    return 1 if result["dataset_drift"] else 0


if __name__ == "__main__":
    sys.exit(main())
