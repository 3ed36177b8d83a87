"""Population benchmark: single process vs `--spark local[2]` on the same synthetic NDJSON
population (bench_engine.generate), for `salvage lines --json` and `salvage cohort`; checks
that both modes write the same bytes and prints wall-clock times and peak memory.

    PYSPARK_PYTHON=.venv/bin/python .venv/bin/python bench/bench_population.py [--patients 10000]
"""

from __future__ import annotations

import argparse
import filecmp
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_engine import OUT, generate

AS_OF = "2026-01-01"


_MEASURE = (
    "import resource, subprocess, sys\n"
    "status = subprocess.call(sys.argv[1:], stderr=subprocess.DEVNULL)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(status)\n"
)


def timed(command: list[str], stdout: Path | None = None) -> tuple[float, float]:
    """Wall seconds and the largest resident memory (MB) among the command's processes (the
    Python driver or the JVM, whichever is larger)."""
    started = time.perf_counter()
    with stdout.open("wb") if stdout else open("/dev/null", "wb") as sink:
        done = subprocess.run(
            [sys.executable, "-c", _MEASURE, *command], stdout=sink, stderr=subprocess.PIPE
        )
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 2):
        raise SystemExit(f"{command[3]} failed with status {done.returncode}")
    return seconds, int(done.stderr.decode().strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=10000)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    folder = OUT / f"population-{args.patients}"
    if not (folder / "Patient.ndjson").exists():
        resources, size = generate(args.patients, folder)
        print(f"generated {args.patients} patients: {resources} resources, {size / 1e6:.0f} MB")
    salvage = [sys.executable, "-m", "salvage.cli"]
    results = {}
    for mode, extra in (("single", []), ("spark", ["--spark", args.master])):
        lines_out = OUT / f"lines-{mode}.json"
        seconds, memory = timed(
            [*salvage, "lines", str(folder), "--json", "--as-of", AS_OF, *extra], lines_out
        )
        print(f"lines  {mode:6} {seconds:7.1f} s  driver+children peak {memory:7.0f} MB")
        cohort_out = OUT / f"cohort-{mode}"
        seconds, memory = timed(
            [*salvage, "cohort", str(folder), "--out", str(cohort_out), "--as-of", AS_OF, *extra]
        )
        print(f"cohort {mode:6} {seconds:7.1f} s  driver+children peak {memory:7.0f} MB")
        results[mode] = (lines_out, cohort_out)
    same_lines = filecmp.cmp(results["single"][0], results["spark"][0], shallow=False)
    same_cohort = all(
        filecmp.cmp(results["single"][1] / n, results["spark"][1] / n, shallow=False)
        for n in ("lines.csv", "failures.csv", "summary.json", "report.html")
    )
    print(f"identical output: lines {same_lines}, cohort {same_cohort}")


if __name__ == "__main__":
    main()
