"""The capacity table: a class of N on one app process and on one process per core.

Runs ``benchmarks/classroom_load.py`` for every class size and process count asked for,
each against a fresh server (one ``streamlit run app.py``, or ``serve_replicas.py``'s
replicas behind nginx), and keeps each report in ``docs/capacity/`` as JSON. A report
already there is not run again (delete it to measure anew), so an interrupted series
resumes where it stopped. ``--table`` prints the table in ``docs/performance.md`` from the
reports.

    python benchmarks/capacity.py --sizes 8 20 40 80 120 --processes 1 2
    python benchmarks/capacity.py --table

Each class has ``--trainers`` sessions that press Train (3,000 images x 20 epochs: long
enough that the queue is busy for most of the run) and N minus them that move
sliders and change pages every 1.5 s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "docs" / "capacity"
SCRIPTS = REPO / "scripts"
BENCHMARKS = REPO / "benchmarks"


def report_path(processes: int, size: int) -> Path:
    return RESULTS / f"p{processes}-n{size}.json"


def measure(processes: int, size: int, args: argparse.Namespace) -> int:
    out = report_path(processes, size)
    load = [
        "--students",
        str(size - args.trainers),
        "--trainers",
        str(args.trainers),
        "--duration",
        str(args.duration),
        "--think",
        "1.5",
        "--train-images",
        "3000",
        "--train-epochs",
        "20",
        "--warmup",
        "--quiet",
        "--json",
        str(out),
    ]
    if args.avoid:
        load += ["--avoid", args.avoid]
    if processes == 1:
        cmd = [sys.executable, str(BENCHMARKS / "classroom_load.py"), "--start-server", *load]
    else:
        cmd = [
            sys.executable,
            str(SCRIPTS / "serve_replicas.py"),
            "--replicas",
            str(processes),
            "--port",
            "8599",
            "--load",
            *load,
        ]
    print(f"{processes} process(es), {size} sessions: {' '.join(cmd[1:])}", flush=True)
    result = subprocess.run(cmd, cwd=REPO)
    if out.exists():
        report = json.loads(out.read_text())
        report["processes"] = processes
        out.write_text(json.dumps(report, indent=1) + "\n")
    return result.returncode


def table() -> str:
    rows = [
        "| processes | sessions (4 train) | interactions | p50 | p95 | max | trainers' p95 "
        "| errors | interactions/s | trainings started/queued/finished | server CPU "
        "| peak RSS | RSS per session |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    reports = [json.loads(p.read_text()) for p in RESULTS.glob("p*-n*.json")]
    for r in sorted(reports, key=lambda r: (r["processes"], r["sessions"])):
        s, t, tr, srv = (
            r["students_response_s"],
            r["trainers_response_s"],
            r["trainings"],
            r["server"],
        )
        rows.append(
            f"| {r['processes']} | {r['sessions']} | {r['interactions']:,} | {s['p50']:.2f} s "
            f"| {s['p95']:.2f} s | {s['max']:.2f} s | {t['p95']:.2f} s | {r['errors']} "
            f"| {r['interactions_per_s']:.1f} | {tr['started']}/{tr['queued']}/{tr['finished']} "
            f"| {srv['cpu_cores']:.2f} | {srv['rss_peak_mb']:,.0f} MB "
            f"| {srv['per_session_mb']:.1f} MB |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 20, 40, 80, 120])
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--trainers", type=int, default=4)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--avoid", help="passed to classroom_load.py (e.g. CIFAR)")
    ap.add_argument("--table", action="store_true", help="print the table and stop")
    args = ap.parse_args(argv)
    if args.table:
        print(table())
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    failed = 0
    for processes in args.processes:
        for size in args.sizes:
            if report_path(processes, size).exists():
                print(f"{processes} process(es), {size} sessions: done already", flush=True)
                continue
            failed += measure(processes, size, args) != 0
    print(table())
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
