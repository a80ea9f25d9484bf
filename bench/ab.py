"""Before → after of one change, measured in interleaved rounds: `python -m bench.ab REV`.

One run of `python -m bench` per version cannot tell a 10% change on a machine whose speed
moves ±30% from minute to minute. Here the two versions take turns, round after round (the
order flips each round), each on a fresh `loadbay serve` and a fresh database, and the
medians are compared: what the machine does to one round it does to both versions nearby.
"REV" is checked out into a temporary git worktree; the other version is this working tree,
uncommitted changes included (or `--after REV`). Both run with this venv's dependencies and
`loadbay` script: only the package's own code differs (the server imports it from the
version's folder, through PYTHONPATH, ahead of the editable install).
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
from bench.client import Measurement, measure, warm_up
from bench.pg import ADMIN_URL
from bench.plan import Plan, Run
from bench.server import ROOT, Server

OPS = (("insert", False), ("update", True))
WARM_UP_LINES = range(90_000_000, 90_004_000)  # ids no measured file has


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.splitlines()[0])
    parser.add_argument("before", help="the git revision measured as 'before'")
    parser.add_argument("--after", help="a git revision (default: this working tree)")
    parser.add_argument("--db", choices=("postgres", "sqlite"), required=True)
    parser.add_argument(
        "--rounds", type=int, default=6, help="even: each version goes first as often"
    )
    parser.add_argument(
        "--scenario",
        choices=("entities", "activities", "files"),
        default="entities",
        help="entity batches over HTTP (inserts, then updates), activities through the"
        " batch-insert API, or an instance file's first load and re-load",
    )
    parser.add_argument(
        "--records", type=int, default=100_000, help="entities, or the file's lines, per round"
    )
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--postgres-admin-url", default=ADMIN_URL)
    args = parser.parse_args(argv)
    if args.rounds < 2 or args.rounds % 2:
        parser.error("--rounds must be even and at least 2")
    if args.records < 1000:
        parser.error("--records must be at least 1000")
    return args


def checkout(revision: str, folder: Path) -> Path:
    """A worktree of `revision`; git's own message, if it fails, goes to the terminal."""
    subprocess.run(
        ["git", "worktree", "add", "--quiet", "--detach", str(folder), revision],
        cwd=ROOT,
        check=True,
    )
    return folder


def report(args: argparse.Namespace, seen: dict[tuple[str, str], list[Measurement]]) -> None:
    if args.scenario == "files":
        print(f"\n{args.db}, an instance file of {args.records:,} lines:")
    else:
        print(f"\n{args.db}, {args.clients} clients, {args.records:,} {args.scenario} per line:")
    for op, _ in OPS:
        if ("before", op) not in seen:
            continue
        before = [m.rate for m in seen[("before", op)]]
        after = [m.rate for m in seen[("after", op)]]
        # Each round's two runs ran minutes apart at most: their ratio is the paired figure.
        paired = [a / b for a, b in zip(after, before, strict=True)]
        print(
            f"  {op}: median {statistics.median(before):,.0f} → {statistics.median(after):,.0f}"
            f" records/s; after/before per round {[round(r, 2) for r in paired]}, median"
            f" {statistics.median(paired):.2f}x"
        )
        print(f"    rounds before {[round(r) for r in before]}, after {[round(r) for r in after]}")
        for who in ("server", "postgres") if args.db == "postgres" else ("server",):
            used = {name: _cpu_us(seen[(name, op)], who) for name in ("before", "after")}
            if all(used.values()):
                print(
                    f"    {who} CPU a record, median: {statistics.median(used['before']):.1f} → "
                    f"{statistics.median(used['after']):.1f} us"
                )
        p99s = {
            name: [m.percentile(0.99) for m in seen[(name, op)]] for name in ("before", "after")
        }
        if all(None not in values for values in p99s.values()) and args.scenario != "files":
            print(
                f"    p99 request latency, median: {statistics.median(p99s['before']):.0f} → "
                f"{statistics.median(p99s['after']):.0f} ms"
            )
        peaks = {
            name: [m.peak_rss_mb or 0 for m in seen[(name, op)]] for name in ("before", "after")
        }
        print(
            f"    peak RSS summed over the server's processes, median: "
            f"{statistics.median(peaks['before']):.0f} → {statistics.median(peaks['after']):.0f} MB"
        )


def _cpu_us(rounds: list[Measurement], who: str) -> list[float]:
    """Each round's CPU of the server (its processes) or PostgreSQL, in us a record: steadier
    than records/s on a machine whose speed moves, where that side was not the bottleneck."""
    key = f"{who}_cpu_cores"
    return [
        m.notes[key] * m.seconds / m.records * 1e6
        for m in rounds
        if m.records and m.notes.get(key) is not None
    ]


def one_round(args: argparse.Namespace, name: str, source: Path) -> dict[str, Measurement]:
    """Inserts, then updates of the same keys, on a fresh server: the measurement of each."""
    tmp = Path(tempfile.mkdtemp(prefix="loadbay-ab-"))
    run = Run(Plan(db=args.db, records=args.records, quick=True), tmp, args.postgres_admin_url)
    try:
        server, key = scenarios.start(run, python_path=source)
        try:
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            if args.scenario == "files":
                return file_loads(run, server, headers, args.records)
            if args.scenario == "activities":
                return activity_inserts(server, headers, args)
            httpx.put(
                f"{server.url}/operator-data-api/settings",
                headers=headers,
                json={"templateId": "igaming"},
                timeout=60,
            ).raise_for_status()
            path = "/operator-data-api/batch/entities"
            warm_up(server, path, data.entity_batches(scenarios.WARM_UP), headers)
            measured = {}
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
                measured[op] = seen
            return measured
        finally:
            server.stop()
    finally:
        run.drop_databases()
        shutil.rmtree(tmp, ignore_errors=True)


def activity_inserts(
    server: Server, headers: dict[str, str], args: argparse.Namespace
) -> dict[str, Measurement]:
    """Activities through the batch-insert API, after batches of other ids warmed it up."""
    path = "/api/v1/batch-inserts"
    warm_up(server, path, data.activity_batches(WARM_UP_LINES), headers)
    seen = measure(
        server,
        "activities insert",
        "loadbay",
        "insert",
        path,
        data.activity_batches(range(args.records)),
        clients=args.clients,
        headers=headers,
        count_failures=scenarios.activity_failures,
    )
    if seen.failed:
        raise RuntimeError(f"{seen.failed} records failed: {seen.first_error}")
    return {"insert": seen}


def file_loads(
    run: Run, server: Server, headers: dict[str, str], lines: int
) -> dict[str, Measurement]:
    """An instance file's first load, then its re-load, after a small file of other ids has
    warmed the server up: the measurement of each."""
    warm = run.tmp / "warm-up.ndjson"
    size = data.write_instances(warm, range(WARM_UP_LINES.start, WARM_UP_LINES.stop))
    scenarios.file_loads(server, headers, warm, len(WARM_UP_LINES), size, [])
    path = run.tmp / "instances.ndjson"
    size = data.write_instances(path, range(lines))
    seen: list[Measurement] = []
    scenarios.file_loads(server, headers, path, lines, size, seen)
    failed = [m for m in seen if m.failed]
    if failed:
        raise RuntimeError(f"{failed[0].failed} lines failed: {failed[0].first_error}")
    return {m.op: m for m in seen}


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    scratch = Path(tempfile.mkdtemp(prefix="loadbay-ab-src-"))
    try:
        before = checkout(args.before, scratch / "before")
        after = checkout(args.after, scratch / "after") if args.after else ROOT
        versions = {"before": before, "after": after}
        seen: dict[tuple[str, str], list[Measurement]] = {}
        for number in range(args.rounds):
            order = list(versions) if number % 2 == 0 else list(reversed(versions))
            print(f"round {number + 1} of {args.rounds}: {', '.join(order)}")
            for name in order:
                for op, measured in one_round(args, name, versions[name]).items():
                    seen.setdefault((name, op), []).append(measured)
        report(args, seen)
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        # Forgets the worktrees whose folders are gone, also one interrupted mid-checkout.
        subprocess.run(["git", "worktree", "prune"], cwd=ROOT, check=False)


if __name__ == "__main__":
    sys.exit(main())
