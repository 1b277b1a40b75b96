"""Queue throughput: syncq's batched claim/finish beside pgqueuer and procrastinate.

    .venv/bin/python -m bench.bench_queue [--jobs N] [--workers K] [--batch B]
        [--procrastinate-jobs M] [--repeat R] [--variants] [--json results.json]

One PostgreSQL server for every contender (DATABASE_URL, else an embedded PostgreSQL in
a temporary folder), a fresh database per run (dropped afterwards). Each contender
enqueues its jobs (timed separately), then K consumers drain them with a no-op task;
jobs/s is measured from the consumers' start until the last job is acknowledged.
Contenders alternate within each repetition and the median run is reported, so a noisy
neighbour on a shared machine hurts everyone alike. Not a test: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from bench import _pg, _pgqueuer, _procrastinate, _syncq
from bench._pg import Result

Runner = Callable[[str, argparse.Namespace], Result]

RUNNERS: dict[str, Runner] = {
    "syncq": lambda url, a: _syncq.run(url, jobs=a.jobs, workers=a.workers, batch=a.batch),
    "pgqueuer": lambda url, a: _pgqueuer.run(url, jobs=a.jobs, workers=a.workers, batch=a.batch),
    "procrastinate": lambda url, a: _procrastinate.run(
        url, jobs=a.procrastinate_jobs, workers=a.workers
    ),
}
VARIANTS: dict[str, Runner] = {
    "syncq-merged (proposal)": lambda url, a: _syncq.run(
        url,
        jobs=a.jobs,
        workers=a.workers,
        batch=a.batch,
        label="syncq-merged (proposal)",
        merged=True,
    ),
}
TARGETS = {"pgqueuer": 1.0, "procrastinate": 5.0}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m bench.bench_queue", description=__doc__)
    p.add_argument("--jobs", type=int, default=20_000, help="jobs for syncq and pgqueuer")
    p.add_argument("--workers", type=int, default=4, help="concurrent consumers (K)")
    p.add_argument("--batch", type=int, default=50, help="jobs per claim / dequeue (B)")
    p.add_argument(
        "--procrastinate-jobs", type=int, default=3_000, help="jobs for procrastinate (slower)"
    )
    p.add_argument("--repeat", type=int, default=3, help="runs per contender; median shown")
    p.add_argument("--only", nargs="+", choices=[*RUNNERS, *VARIANTS], help="run only these")
    p.add_argument("--variants", action="store_true", help="also run the proposal variants")
    p.add_argument("--json", metavar="PATH", help="also write the results to this file")
    args = p.parse_args(argv)
    if min(args.jobs, args.workers, args.batch, args.procrastinate_jobs, args.repeat) < 1:
        p.error("--jobs, --workers, --batch, --procrastinate-jobs and --repeat must be >= 1")
    return args


def contenders(args: argparse.Namespace) -> dict[str, Runner]:
    """The contenders to run, in order."""
    chosen = {**RUNNERS, **(VARIANTS if args.variants else {})}
    if args.only:
        chosen = {k: v for k, v in {**RUNNERS, **VARIANTS}.items() if k in args.only}
    return chosen


def run_all(server_url: str, args: argparse.Namespace) -> dict[str, list[Result]]:
    """Every contender `repeat` times, alternating, each run on a fresh database."""
    runs: dict[str, list[Result]] = {name: [] for name in contenders(args)}
    for round_no in range(1, args.repeat + 1):
        for name, runner in contenders(args).items():
            with _pg.fresh_database(server_url, name.split()[0].replace("-", "_")) as url:
                result = runner(url, args)
            runs[name].append(result)
            print(
                f"  round {round_no}/{args.repeat}  {name:<24} {result.rate:>9,.0f} jobs/s",
                file=sys.stderr,
                flush=True,
            )
    return runs


def median_run(results: list[Result]) -> Result:
    """The run with the median rate (the lower middle for an even count)."""
    ordered = sorted(results, key=lambda r: r.rate)
    return ordered[(len(ordered) - 1) // 2]


def table(best: dict[str, Result]) -> str:
    """The results table; ratio is each contender's rate over syncq's."""
    base = best["syncq"].rate if "syncq" in best else None
    headers = ["contender", "jobs", "workers", "batch", "seconds", "jobs/s", "vs syncq"]
    headers.append("enqueue/s")
    rows = []
    for name, r in best.items():
        ratio = f"{r.rate / base:.2f}x" if base else "-"
        enqueue = f"{r.enqueue_rate:,.0f}" if r.enqueue_rate else "-"
        rows.append(
            [
                name,
                f"{r.jobs:,}",
                str(r.workers),
                str(r.batch),
                f"{r.seconds:.2f}",
                f"{r.rate:,.0f}",
                ratio,
                enqueue,
            ]
        )
    return _pg.render_table(headers, rows)


def verdicts(best: dict[str, Result]) -> list[str]:
    """syncq's speed-up over each competitor, against the issue's targets."""
    if "syncq" not in best:
        return []
    lines = []
    for name, target in TARGETS.items():
        if name in best:
            ratio = best["syncq"].rate / best[name].rate
            mark = "met" if ratio >= target else "MISSED"
            lines.append(f"syncq / {name}: {ratio:.2f}x (target >= {target:.1f}x: {mark})")
    return lines


def report(server: str, args: argparse.Namespace, runs: dict[str, list[Result]]) -> None:
    """Print the table (and write JSON when asked)."""
    best = {name: median_run(results) for name, results in runs.items()}
    print(f"\nqueue throughput on {server}, median of {args.repeat} run(s)\n")
    print(table(best))
    print()
    for line in verdicts(best):
        print(line)
    for name, r in best.items():
        print(f"  {name}: {r.notes}")
    if args.json:
        base = best["syncq"].rate if "syncq" in best else None
        payload: dict[str, Any] = {
            "server": server,
            "args": vars(args),
            "results": [_pg.result_dict(r, base) for r in best.values()],
            "runs": {n: [_pg.result_dict(r, base) for r in rs] for n, rs in runs.items()},
            "verdicts": verdicts(best),
        }
        _pg.write_json(args.json, payload)
        print(f"\nwrote {args.json}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    args = parse_args(argv)
    with _pg.server() as server_url:
        version = _pg.server_version(server_url)
        print(f"server: {version}; contenders: {', '.join(contenders(args))}", file=sys.stderr)
        runs = run_all(server_url, args)
    report(version, args, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
