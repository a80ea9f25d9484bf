"""Ratios against the baselines, the printed table, the JSON file and the chart."""

from __future__ import annotations

import math
import os
import platform
import re
import sqlite3
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from bench import pg
from bench.client import Measurement
from bench.server import ROOT

BASELINES = ("ceiling", "peer", "floor")
CPU = ("server", "postgres", "bench", "machine")
COLOURS = {"loadbay": "#1f77b4", "ceiling": "#2ca02c", "peer": "#ff7f0e", "floor": "#d62728"}


def add_ratios(results: list[Measurement]) -> None:
    """Each Loadbay line as a multiple of the baselines of the same kind of write.

    Inserts (first passes, events, activities, first file loads) compare with the baselines'
    insert pass, updates (second passes, file re-loads) with their update pass; the ceiling
    is that of the line's own rows, the peer and the floor write entities.
    """
    baselines = {
        (m.kind, m.op, m.rows if m.kind == "ceiling" else None): m.rate
        for m in results
        if m.kind in BASELINES and m.rate > 0
    }
    for m in results:
        if m.kind == "loadbay":
            rated = {
                kind: baselines.get((kind, m.op, m.rows if kind == "ceiling" else None))
                for kind in BASELINES
            }
            m.ratios = {kind: round(m.rate / rate, 3) for kind, rate in rated.items() if rate}


def table(results: list[Measurement]) -> str:
    head = (
        f"{'scenario':<42}{'records':>10}{'failed':>8}{'rec/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'RSS MB':>8}{'1 proc':>7}{'srv':>6}{'pg':>6}{'bench':>6}{'all':>6}"
        f"{'x ceil':>8}{'x peer':>8}{'x floor':>8}"
    )
    lines = [head, "-" * len(head)]
    for m in results:
        ratios = [m.ratios.get(kind) for kind in BASELINES]
        lines.append(
            f"{m.name:<42.42}{m.records:>10,}{m.failed:>8,}{m.rate:>10,.0f}"
            f"{_num(m.percentile(0.5)):>9}{_num(m.percentile(0.99)):>9}{_num(m.peak_rss_mb):>8}"
            f"{_num(m.notes.get('peak_rss_largest_process_mb')):>7}"
            + "".join(f"{_num(m.notes.get(f'{who}_cpu_cores'), 2):>6}" for who in CPU)
            + "".join(f"{_num(r, 2):>8}" for r in ratios)
        )
    return "\n".join(lines)


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def machine(db: str, admin_url: str) -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    meminfo = Path("/proc/meminfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    total = re.search(r"^MemTotal:\s+(\d+) kB", meminfo, re.MULTILINE)
    described: dict[str, Any] = {
        "nproc": len(os.sched_getaffinity(0)),
        "memory_gb": round(int(total.group(1)) / 2**20, 1) if total else None,
        "cpu_model": model.group(1).strip() if model else platform.processor(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "loadbay": _version("loadbay"),
        "datasette": _version("datasette"),
        "git_commit": _git("rev-parse", "HEAD"),
        # Uncommitted changes to the server under test: the commit alone does not name it.
        "git_dirty_loadbay": (_git("status", "--porcelain", "--", "loadbay") or "").splitlines(),
        "load_average_at_start": os.getloadavg(),
    }
    if db == "postgres":
        try:
            described["postgresql"] = pg.server_version(admin_url)
        except (OSError, asyncpg.PostgresError) as error:
            described["postgresql"] = f"unreachable: {error}"
    return described


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")


def write_chart(path: Path, results: list[Measurement], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [m for m in results if m.rate > 0]
    fig, ax = plt.subplots(figsize=(10, 0.38 * len(shown) + 1.6))
    names = [m.name for m in shown][::-1]
    rates = [m.rate for m in shown][::-1]
    colours = [COLOURS.get(m.kind, "grey") for m in shown][::-1]
    bars = ax.barh(names, rates, color=colours)
    ax.bar_label(bars, labels=[f"{r:,.0f}" for r in rates], padding=3, fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("records/s (log scale)")
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="y", labelsize=8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in COLOURS.values()]
    ax.legend(handles, list(COLOURS), loc="lower right", fontsize=8)
    # Bars start at the power of ten below the slowest line, so their lengths compare.
    low = 10 ** math.floor(math.log10(min(rates, default=1)))
    ax.set_xlim(left=low, right=max(rates, default=1) * 4)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
