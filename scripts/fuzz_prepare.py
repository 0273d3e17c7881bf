"""Long fuzz run of ``bulkformer.prepare``: N random, often damaged, tables in every format.

Uses the strategy of ``tests/io/test_io_fuzz.py`` (the suite runs it for a few hundred tables);
counts the tables tried, how many were read through, and every exception that is not a
``BulkFormerError`` (a crash: a bug), with one traceback per distinct cause.

    nice -n 19 .venv/bin/python scripts/fuzz_prepare.py --tables 10000

Exit status 1 if anything crashed.
"""

from __future__ import annotations

import argparse
import collections
import platform
import sys
import time
import traceback
import warnings
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "io"))
from test_io_fuzz import GENE_ORDER, uploads

from bulkformer import prepare
from bulkformer.errors import BulkFormerError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    outcomes: collections.Counter[str] = collections.Counter()
    crashes: dict[str, str] = {}
    began = time.monotonic()

    @settings(max_examples=args.tables, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @seed(args.seed)
    @given(kwargs=uploads())
    def one(kwargs: dict) -> None:
        source = kwargs.pop("source")
        fmt = kwargs.get("filename", "")
        try:
            prepare(source, gene_order=GENE_ORDER, **kwargs)
            outcomes["read through"] += 1
        except BulkFormerError:
            outcomes["refused with a BulkFormerError"] += 1
        except Exception as exc:  # noqa: BLE001 - a crash: record it and go on
            outcomes["crashed"] += 1
            where = traceback.extract_tb(exc.__traceback__)[-1]
            cause = f"{type(exc).__name__} at {Path(where.filename).name}:{where.lineno} ({fmt})"
            crashes.setdefault(cause, traceback.format_exc())
        outcomes["tables tried"] += 1
        if outcomes["tables tried"] % 500 == 0:
            print(f"{outcomes['tables tried']:,} tables, {outcomes['crashed']} crashes, "
                  f"{time.monotonic() - began:.0f} s", flush=True)

    one()
    print(f"\n{platform.node()} · Python {platform.python_version()} · {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"tables tried: {outcomes['tables tried']:,}; read through: {outcomes['read through']:,}; "
          f"refused with a BulkFormerError: {outcomes['refused with a BulkFormerError']:,}; "
          f"crashes: {outcomes['crashed']} from {len(crashes)} cause(s); {time.monotonic() - began:.0f} s")
    for cause, text in crashes.items():
        print(f"\n--- {cause}\n{text}")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
