"""Loadbay end to end against its baselines, in one run: `python -m bench --db postgres|sqlite`.

Run from the repository root with the dev venv (`pip install -e '.[dev,bench]'`). Every server
is a subprocess of this run on 127.0.0.1, every database a fresh one, all removed at the end.
See bench/README.md for what each line measures and how to read the ratios.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import baselines, report, scenarios
from bench.client import Measurement
from bench.pg import ADMIN_URL
from bench.plan import FULL_RECORDS, QUICK_RECORDS, Plan, Run

RESULTS = Path(__file__).resolve().parent / "results"
Section = Callable[[Run, list[Measurement]], None]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("postgres", "sqlite"), required=True)
    parser.add_argument(
        "--records",
        type=int,
        help=f"entities at 4 clients; other sizes follow (default {FULL_RECORDS:,}, "
        f"{QUICK_RECORDS:,} with --quick)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, one 20,000-line file, no 1M file"
    )
    parser.add_argument(
        "--postgres-admin-url",
        default=ADMIN_URL,
        help="a PostgreSQL URL allowed to create databases (default %(default)s)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="default %(default)s")
    parser.add_argument(
        "--keep-temp", action="store_true", help="keep the scratch folder (server logs) at the end"
    )
    args = parser.parse_args(argv)
    if args.records is None:
        args.records = QUICK_RECORDS if args.quick else FULL_RECORDS
    if args.records < 1000:
        parser.error("--records must be at least 1000")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # A SIGTERM unwinds like Ctrl-C, so every server is stopped and every database dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    plan = Plan(db=args.db, records=args.records, quick=args.quick)
    started = time.monotonic()
    today = dt.date.today().isoformat()
    results: list[Measurement] = []
    failures: dict[str, str] = {}
    described = report.machine(args.db, args.postgres_admin_url)
    print(f"Loadbay bench on {args.db}: {described['cpu_model']}, {described['nproc']} cores")
    if os.getloadavg()[0] > 1.0:
        print(
            f"warning: the machine is busy (load average {os.getloadavg()[0]:.2f}): "
            "other processes share the cores and the numbers will be low"
        )
    tmp = Path(tempfile.mkdtemp(prefix="loadbay-bench-"))
    run = Run(plan, tmp, args.postgres_admin_url)
    sections: list[tuple[str, Section]] = [
        ("loadbay", scenarios.run_all),
        ("ceiling", baselines.ceiling),
        ("peer", baselines.peer),
        ("floor", baselines.floor),
    ]
    try:
        for name, section in sections:
            print(f"\n{name}")
            try:
                section(run, results)
            except Exception as error:  # the other sections still run and get reported
                traceback.print_exc()
                failures[name] = f"{type(error).__name__}: {error}"[:2000]
    finally:
        run.drop_databases()
        if args.keep_temp:
            print(f"\nscratch folder kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report.add_ratios(results)
    print(f"\n{report.table(results)}")
    base = args.out / f"{today}-{args.db}"
    report.write_json(
        base.with_suffix(".json"),
        {
            "date": today,
            "db": args.db,
            "quick": args.quick,
            "records": args.records,
            "seconds": round(time.monotonic() - started, 1),
            "machine": {**described, "load_average_at_end": os.getloadavg()},
            "results": [m.to_json() for m in results],
            "section_failures": failures,
        },
    )
    quick = ", --quick" if args.quick else ""
    title = f"Loadbay on {args.db}, {today} ({described['nproc']} cores{quick}), records/s"
    report.write_chart(base.with_suffix(".png"), results, title)
    print(f"\nwrote {base}.json and {base}.png in {time.monotonic() - started:.0f}s")
    for name, message in failures.items():
        print(f"section {name} failed: {message}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
