"""Run every benchmark (bench/bench_*.py) and write their figures to docs/benchmarks.md.

Each module exposes run(quick) -> list of rows measured side by side with a yardstick in the same run.
Usage: python bench/run.py [--quick] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import re
import subprocess
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "docs" / "benchmarks.md"


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(HERE))
    spec.loader.exec_module(mod)
    return mod


def _fmt(value: float, unit: str) -> str:
    if value >= 1000:
        return f"{value:,.0f} {unit}"
    return f"{value:.3g} {unit}"


def _server_version() -> str:
    try:
        return subprocess.run(["mariadbd", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--only", nargs="*", help="module names, e.g. bench_up")
    args = parser.parse_args()
    rows, failures = [], []
    for path in sorted(HERE.glob("bench_*.py")):
        if args.only and path.stem not in args.only:
            continue
        print(f"== {path.stem}", flush=True)
        t0 = time.time()
        try:
            got = _load(path).run(quick=args.quick)
        except Exception:  # noqa: BLE001 - one broken benchmark must not hide the others
            failures.append((path.stem, traceback.format_exc()))
            print(failures[-1][1], file=sys.stderr)
            continue
        for row in got:
            row["module"] = path.stem
            print(json.dumps(row), flush=True)
        rows.extend(got)
        print(f"   ({time.time() - t0:.0f}s)", flush=True)
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        f"{' (quick sizes)' if args.quick else ''}: {platform.node()}, {platform.processor() or platform.machine()},"
        f" {_cpus()} cores, Python {platform.python_version()}, {_server_version()}.",
        "Every row is measured side by side with its yardstick in the same run. Ratio = how many times better "
        "replab is (>1 is better: faster or more throughput).",
        "",
        "| benchmark | replab | yardstick | yardstick value | ratio | target |",
        "|---|---|---|---|---|---|",
    ]
    rows = _keep_others(rows, args.only) if args.only else rows
    for r in rows:
        ratio = (r["replab"] / r["yardstick"]) if r["higher_is_better"] else (r["yardstick"] / r["replab"])
        r["ratio"] = ratio
        lines.append(f"| {_cell(r['benchmark'])} | {_fmt(r['replab'], r['unit'])} | {_cell(r['yardstick_name'])} | "
                     f"{_fmt(r['yardstick'], r['unit'])} | {ratio:.2f}x | {r['target']} |")
    for name, _tb in failures:
        lines.append(f"| {name} | FAILED (see the `make bench` output) | | | | |")
    lines += ["", NOTES, "", "Raw figures:", "", "```json", json.dumps(rows, indent=1), "```", ""]
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text("\n".join(lines))
    print(f"wrote {OUT}")
    return 1 if failures else 0


NOTES = """Notes:
- All servers (primary and two replicas) and the load generator share the same 2 cores, and every commit
  waits for an fsync (`sync_binlog=1`, `innodb_flush_log_at_trx_commit=1`), so single-row figures move by
  10-20% from run to run; each feed/sysbench figure is the median of rounds (5 of 10 s on the small table,
  3 on the 10M-row one) that alternate which tool goes first.
- `feed --rate 0` sends single-row INSERTs 8 to a packet (multi-statement): each is still its own
  autocommitted transaction with its own acknowledgement in the ledger; the client just waits one round trip
  per packet. Its insert loop uses mysqlclient (the C client library binding; `make install` builds it,
  falling back to PyMySQL if it cannot). Measured while choosing: PyMySQL one INSERT per round trip was
  0.93-0.95x sysbench; PyMySQL pipelined reached ~1.0x at 1 thread but ~0.94x at 4 threads; mysqlclient
  pipelined over loopback TCP was 0.94-1.02x. Both tools now connect by the primary's Unix socket (sysbench
  always did): about 6% more rows/s for feed at 16 threads, where the 2 cores are ~80% busy and client
  kernel time per statement counts.
- check vs pt-table-checksum: replab computes every node's checksums at once (all three servers scan on
  the same 2 cores); pt-table-checksum computes on the primary and the replicas replay its statements.
  Both are mostly CPU-bound here, so the server CPU row (what the three servers used, which moves far
  less than wall time when other work shares the machine) says more than the wall times when they are
  close. replab's row hash is SHA-256 based (see docs/feed-check.md, *How rows are hashed*), pt's CRC32.
  pt-table-checksum 3.2.1 does not run against MySQL 9.7 (`SHOW MASTER STATUS` is gone), so these rows
  are MariaDB 10.11 only.
- The repair row compares a full rebuild (snapshot, reset, reattach, catch up under no load, verify with
  the checker) with a bare dump-and-load pipe that does none of the last four.
- On the 10,000,000-row tables both tools fall to tens of rows/s on this machine (128 MB buffer pools,
  64 MB redo logs, three servers on one disk: commits wait on page flushes, and sysbench's table has a
  secondary index on random values); the rows compare the tools under the same conditions, after the
  replicas caught up and the dirty pages of the bulk load were written.
- The bench_scale rows (issue 21) were measured at 1,000,000 rows (`REPLAB_BENCH_SCALE_ROWS=1000000`), not
  the default 10,000,000: the shared machine was too busy for a 10M run in the time available. 1 GB buffer
  pools; feed/sysbench medians of 3 rounds of 10 s with the live sampler running; check and
  pt-table-checksum one run each (0.66x, short of the 0.5x goal); `sync` without `--from-check` includes
  the full check that finds the ids; repairs are full rebuilds with verification. MySQL rows on 9.7."""


def _keep_others(rows: list[dict], only: list[str]) -> list[dict]:
    """With --only, the rows of the other modules stay as the last full run wrote them (their run date in
    the benchmark's name), in their order; the modules run now replace theirs."""
    try:
        text = OUT.read_text()
        old = json.loads(text.split("```json", 1)[1].split("```", 1)[0])
        found = re.search(r"Written by `make bench` on (\d{4}-\d\d-\d\d \d\d:\d\d UTC)", text)
        stamp = found.group(1) if found else "an earlier run"
    except (OSError, IndexError, ValueError):
        return rows
    out, placed = [], False
    for r in old:
        if r.get("module") in only:
            if not placed:
                out += rows
                placed = True
            continue
        if "(from the run of" not in r["benchmark"]:
            r = {**r, "benchmark": f"{r['benchmark']} (from the run of {stamp})"}
        out.append(r)
    return out if placed else out + rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    sys.exit(main())
