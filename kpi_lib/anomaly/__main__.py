"""``python -m kpi_lib.anomaly INPUT OUTPUT [--time-column C] [--value-column C] [--rules NAME|FILE]``

The detector contract nab_eval.py and the CLI use: same rows, same order, plus is_anomaly/score/
severity/explanation. Exit code 2 with a one-line message on a user error.
"""

from __future__ import annotations

import argparse
import sys

from kpi_lib.anomaly import detect_file
from kpi_lib.errors import DetectError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kpi_lib.anomaly", description=__doc__.split("\n\n")[1])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--time-column", default="timestamp")
    ap.add_argument("--value-column", default="value")
    ap.add_argument(
        "--rules",
        default="default",
        help="built-in name (default, legacy, classic, business_*) or YAML/JSON file",
    )
    a = ap.parse_args(argv)
    try:
        detect_file(
            a.input, a.output, time_column=a.time_column or None, value_column=a.value_column, rules=a.rules
        )
    except DetectError as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
