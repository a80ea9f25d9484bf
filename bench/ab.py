"""Before → after of one change, measured in interleaved rounds: `python -m bench.ab REV`.

One run of `python -m bench` per version cannot tell a 10% change on a machine whose speed
moves ±30% from minute to minute. Here the two versions take turns, round after round (the
order flips each round), each on a fresh `loadbay serve` and a fresh database, and the
medians are compared: what the machine does to one round it does to both versions nearby.
"REV" is checked out into a temporary git worktree; the other version is this working tree,
uncommitted changes included (or `--after REV`).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from bench import data, scenarios
from bench.client import measure, warm_up
from bench.pg import ADMIN_URL
from bench.plan import Plan, Run
from bench.server import ROOT

OPS = (("insert", False), ("update", True))


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.splitlines()[0])
    parser.add_argument("before", help="the git revision measured as 'before'")
    parser.add_argument("--after", help="a git revision (default: this working tree)")
    parser.add_argument("--db", choices=("postgres", "sqlite"), required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--records", type=int, default=100_000, help="entities per line")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--postgres-admin-url", default=ADMIN_URL)
    return parser.parse_args(argv)


def checkout(revision: str, folder: Path) -> Path:
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(folder), revision],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return folder


def one_round(args: argparse.Namespace, name: str, source: Path) -> dict[str, float]:
    """Entity inserts, then updates of the same keys, on a fresh server: records/s of each."""
    tmp = Path(tempfile.mkdtemp(prefix="loadbay-ab-"))
    run = Run(Plan(db=args.db, records=args.records, quick=True), tmp, args.postgres_admin_url)
    try:
        server, key = scenarios.start(run, python_path=source)
        try:
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            httpx.put(
                f"{server.url}/operator-data-api/settings",
                headers=headers,
                json={"templateId": "igaming"},
                timeout=60,
            ).raise_for_status()
            path = "/operator-data-api/batch/entities"
            warm_up(server, path, data.entity_batches(scenarios.WARM_UP), headers)
            rates = {}
            for op, updated in OPS:
                seen = measure(
                    server,
                    f"{name} {op}",
                    "loadbay",
                    op,
                    path,
                    data.entity_batches(range(args.records), updated),
                    clients=args.clients,
                    headers=headers,
                    count_failures=scenarios.operator_failures,
                )
                if seen.failed:
                    raise RuntimeError(f"{seen.failed} records failed: {seen.first_error}")
                rates[op] = seen.rate
            return rates
        finally:
            server.stop()
    finally:
        run.drop_databases()
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    scratch = Path(tempfile.mkdtemp(prefix="loadbay-ab-src-"))
    worktrees = [checkout(args.before, scratch / "before")]
    try:
        after = checkout(args.after, scratch / "after") if args.after else ROOT
        if args.after:
            worktrees.append(after)
        versions = {"before": worktrees[0], "after": after}
        rates: dict[tuple[str, str], list[float]] = {}
        for number in range(args.rounds):
            order = list(versions) if number % 2 == 0 else list(reversed(versions))
            print(f"round {number + 1} of {args.rounds}: {', '.join(order)}")
            for name in order:
                for op, rate in one_round(args, name, versions[name]).items():
                    rates.setdefault((name, op), []).append(rate)
        print(f"\n{args.db}, {args.clients} clients, {args.records:,} entities per line, medians:")
        for op, _ in OPS:
            before = statistics.median(rates[("before", op)])
            after_rate = statistics.median(rates[("after", op)])
            print(
                f"  {op}: {before:,.0f} → {after_rate:,.0f} records/s "
                f"({after_rate / before:.2f}x); rounds before "
                f"{[round(r) for r in rates[('before', op)]]}, after "
                f"{[round(r) for r in rates[('after', op)]]}"
            )
        return 0
    finally:
        for folder in worktrees:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(folder)], cwd=ROOT, check=False
            )
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
