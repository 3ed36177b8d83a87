"""Engine benchmark: a population in NDJSON (Bulk Data style), engine time vs parse time.

    python3 dev.py bench [--patients 10000] [--shape synthetic|medadmin] [--rounds 3]
                         [--base /work/wt-perf-base] [--bucket-mb 128] [--memory-curve 1000,10000]

Each phase runs in its own process; parse and engine runs are interleaved (P E P E ..., --rounds
pairs) and the ratio is the median of the per-pair ratios (the machine is shared: absolute times
are noisy, a ratio of neighbouring runs much less so). Prints for each: wall and CPU time, peak
resident memory.
- parse: orjson.loads of every line (the fastest JSON parser installed), nothing else.
- engine: read + decode + convert + lines + failures for every patient, in process; the timer
  starts after imports and the knowledge base load (one-off costs, reported by `process`).
- process: the whole `salvage lines --json` command (start-up, knowledge base, analysis,
  recommendation, output), timed from outside.
- with --base, the engine of another checkout (e.g. `git worktree add /work/wt-base main`) runs
  in the same interleaving (P E B ...), and the per-triple ratio base/engine is reported.
- --memory-curve: peak RSS of the engine with buckets (SALVAGE_BUCKET_MB) and in one pass, for
  each population size given.
The synthetic shape is lymphoma and HIV patients with many labs no rule reads; the medadmin shape
is MedicationAdministration-heavy like a published lung-cancer population (about 12 per patient).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

OUT = Path(__file__).parent / "out"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
R_CHOP = [
    ("121191", "rituximab"),
    ("3002", "cyclophosphamide"),
    ("3639", "doxorubicin"),
    ("11202", "vincristine"),
    ("8640", "prednisone"),
]
R_ICE = [
    ("121191", "rituximab"),
    ("5657", "ifosfamide"),
    ("40048", "carboplatin"),
    ("4179", "etoposide"),
]
OTHER_LABS = [
    ("718-7", "g/dL", 13.0),
    ("6690-2", "10*3/uL", 6.0),
    ("777-3", "10*3/uL", 250.0),
    ("2951-2", "mmol/L", 140.0),
    ("2823-3", "mmol/L", 4.1),
]


def _day(start: date, offset: int) -> str:
    return (start + timedelta(days=offset)).isoformat()


def generate(patients: int, directory: Path, seed: int = 7) -> tuple[int, int]:
    """Write Patient, Condition, MedicationAdministration, MedicationRequest, Observation NDJSON."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    names = ["Patient", "Condition", "MedicationAdministration", "MedicationRequest", "Observation"]
    files = {n: (directory / f"{n}.ndjson").open("w") for n in names}
    count = 0
    for n in range(patients):
        pid = f"bench-{n}"
        subject = {"reference": f"Patient/{pid}"}
        start = date(2018, 1, 1) + timedelta(days=rng.randrange(1500))
        hiv = n % 4 == 0

        def emit(kind: str, body: dict, pid: str = pid, subject: dict = subject) -> None:
            nonlocal count
            count += 1
            body = {"resourceType": kind, "id": f"{pid}-{count}", "subject": subject, **body}
            files[kind].write(json.dumps(body, separators=(",", ":")) + "\n")

        files["Patient"].write(
            json.dumps(
                {
                    "resourceType": "Patient",
                    "id": pid,
                    "birthDate": f"{rng.randrange(1940, 1990)}-05-01",
                    "gender": rng.choice(["male", "female"]),
                }
            )
            + "\n"
        )
        count += 1
        code = "86406008" if hiv else "109969005"
        emit(
            "Condition",
            {
                "code": {"coding": [{"system": SNOMED, "code": code}]},
                "clinicalStatus": {"coding": [{"code": "active"}]},
            },
        )
        if hiv:
            for k in range(12):
                emit(
                    "MedicationRequest",
                    {
                        "status": "completed",
                        "intent": "order",
                        "authoredOn": _day(start, 90 * k),
                        "medicationCodeableConcept": {
                            "coding": [{"system": RXNORM, "code": "1999667"}]
                        },
                        "dispenseRequest": {"expectedSupplyDuration": {"value": 90, "code": "d"}},
                    },
                )
            for k in range(24):
                value = 20 if k > 2 else 40000 // (k + 1)
                emit(
                    "Observation",
                    {
                        "status": "final",
                        "effectiveDateTime": _day(start, 45 * k),
                        "code": {"coding": [{"system": LOINC, "code": "20447-9"}]},
                        "valueQuantity": {
                            "value": value,
                            "unit": "{copies}/mL",
                            "code": "{copies}/mL",
                        },
                    },
                )
        else:
            for cycle in range(6):
                for rx, name in R_CHOP:
                    emit(
                        "MedicationAdministration",
                        {
                            "status": "completed",
                            "effectiveDateTime": _day(start, 21 * cycle),
                            "medicationCodeableConcept": {
                                "coding": [{"system": RXNORM, "code": rx, "display": name}]
                            },
                        },
                    )
            emit(
                "Observation",
                {
                    "status": "final",
                    "effectiveDateTime": _day(start, 300),
                    "code": {"coding": [{"system": LOINC, "code": "97509-4"}]},
                    "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "271299001"}]},
                },
            )
            for cycle in range(3):
                for rx, name in R_ICE:
                    emit(
                        "MedicationAdministration",
                        {
                            "status": "completed",
                            "effectiveDateTime": _day(start, 320 + 21 * cycle),
                            "medicationCodeableConcept": {
                                "coding": [{"system": RXNORM, "code": rx, "display": name}]
                            },
                        },
                    )
        labs = 150 if hiv else 155
        for k in range(labs):
            loinc, unit, base = OTHER_LABS[k % len(OTHER_LABS)]
            if k % 10 == 0:
                loinc, unit, base = "2160-0", "mg/dL", 1.0
            emit(
                "Observation",
                {
                    "status": "final",
                    "effectiveDateTime": _day(start, 7 * k),
                    "code": {"coding": [{"system": LOINC, "code": loinc}]},
                    "valueQuantity": {
                        "value": round(base * rng.uniform(0.8, 1.2), 2),
                        "unit": unit,
                        "code": unit,
                    },
                },
            )
    for handle in files.values():
        handle.close()
    size = sum(p.stat().st_size for p in directory.glob("*.ndjson"))
    return count, size


LUNG = [
    ("40048", "carboplatin"),
    ("68149", "pemetrexed"),
    ("1547545", "pembrolizumab"),
    ("72962", "docetaxel"),
]


def generate_medadmin(patients: int, directory: Path, seed: int = 11) -> tuple[int, int]:
    """MedicationAdministration-heavy: a Patient, a Condition and about 12 administrations each."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    names = ["Patient", "Condition", "MedicationAdministration"]
    files = {n: (directory / f"{n}.ndjson").open("w") for n in names}
    count = 0
    for n in range(patients):
        pid = f"lung-{n}"
        subject = {"reference": f"Patient/{pid}"}
        start = date(2016, 1, 1) + timedelta(days=rng.randrange(2500))
        files["Patient"].write(
            json.dumps({"resourceType": "Patient", "id": pid, "birthDate": "1955-03-01"}) + "\n"
        )
        count += 1
        files["Condition"].write(
            json.dumps(
                {
                    "resourceType": "Condition",
                    "id": f"{pid}-c",
                    "subject": subject,
                    "code": {"coding": [{"system": SNOMED, "code": "254637007"}]},
                    "onsetDateTime": start.isoformat(),
                }
            )
            + "\n"
        )
        count += 1
        for k in range(rng.randrange(6, 19)):
            rx, name = LUNG[k % 2] if k < 8 else LUNG[2 + k % 2]
            files["MedicationAdministration"].write(
                json.dumps(
                    {
                        "resourceType": "MedicationAdministration",
                        "id": f"{pid}-ma{k}",
                        "status": "completed",
                        "subject": subject,
                        "effectivePeriod": {"start": _day(start, 21 * (k // 2))},
                        "medicationCodeableConcept": {
                            "coding": [{"system": RXNORM, "code": rx, "display": name}],
                            "text": name,
                        },
                        "dosage": {"dose": {"value": 500, "unit": "mg"}},
                    },
                    separators=(",", ":"),
                )
                + "\n"
            )
            count += 1
    for handle in files.values():
        handle.close()
    size = sum(p.stat().st_size for p in directory.glob("*.ndjson"))
    return count, size


def phase_parse(directory: Path) -> dict:
    import orjson

    started, cpu = time.perf_counter(), time.process_time()
    n = 0
    for path in sorted(directory.glob("*.ndjson")):
        with path.open("rb") as handle:
            for line in handle:
                orjson.loads(line)
                n += 1
    return {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu}


def phase_engine(directory: Path) -> dict:
    """Read + decode + convert + lines + failures, after the one-off imports and knowledge load.
    Runs on this checkout or, with PYTHONPATH, on an older one (the general path then)."""
    from salvage.engine import analyse_patient
    from salvage.fhir.reader import is_resource_type
    from salvage.knowledge import load_knowledge
    from salvage.tuning import tune_gc

    tune_gc()  # as the `salvage` CLI does
    kb = load_knowledge()
    is_resource_type("Patient")  # imports fhir.resources once: a one-off, outside the timer
    as_of = date(2026, 6, 30)
    try:
        from salvage.service import read_population
    except ImportError:  # a checkout before the fast path: the general path in one pass
        from salvage.fhir.reader import ReadResult, iter_resources
        from salvage.fhir.records import build_patient_records

        def records() -> object:
            yield build_patient_records(iter_resources([str(directory)], ReadResult()), kb)[0]

        buckets = 1
    else:
        population = read_population([str(directory)], kb)
        records, buckets = (lambda: population.records), population.buckets
    started, cpu = time.perf_counter(), time.process_time()
    patients = failures = 0
    for bucket in records():  # type: ignore[attr-defined]
        patients += len(bucket)
        failures += sum(len(analyse_patient(r, kb, as_of).failures) for r in bucket.values())
    return {
        "seconds": time.perf_counter() - started,
        "cpu": time.process_time() - cpu,
        "patients": patients,
        "failures": failures,
        "buckets": buckets,
    }


def run_phase(
    name: str, directory: Path, pythonpath: str | None = None, env: dict | None = None
) -> dict:
    """One phase in a fresh process: wall and CPU time, peak RSS of that process alone."""
    environment = {**os.environ, **(env or {})}
    if pythonpath:
        environment["PYTHONPATH"] = pythonpath
    if name == "process":
        command = [sys.executable, "-m", "salvage.cli", "lines", "--json", "--as-of", "2026-06-30"]
        command.append(str(directory))
    else:
        command = [sys.executable, __file__, "--phase", name, "--dir", str(directory)]
    started = time.perf_counter()
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=environment
    )
    out = child.stdout.read() if child.stdout else b""
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{name} phase failed ({status})")
    result = json.loads(out) if name != "process" else {"seconds": wall}
    result["process_cpu"] = usage.ru_utime + usage.ru_stime
    result["process_wall"] = wall
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    if name == "process":
        result["cpu"] = result["process_cpu"]
    return result


def population(patients: int, shape: str) -> tuple[Path, dict]:
    directory = OUT / (f"population-{patients}" if shape == "synthetic" else f"{shape}-{patients}")
    stamp = directory / ".complete"
    if not stamp.exists():
        print(f"generating {patients} patients ({shape}) in {directory} ...", flush=True)
        make = generate if shape == "synthetic" else generate_medadmin
        count, size = make(patients, directory)
        stamp.write_text(json.dumps({"resources": count, "bytes": size}))
    return directory, json.loads(stamp.read_text())


def _line(label: str, runs: list[dict]) -> str:
    wall = statistics.median(r["seconds"] for r in runs)
    cpu = statistics.median(r["cpu"] for r in runs)
    rss = max(r["peak_rss_mb"] for r in runs)
    return f"{label:<34}{wall:8.2f} s wall {cpu:8.2f} s CPU   peak RSS {rss:6.0f} MB"


def compare(args: argparse.Namespace) -> None:
    directory, meta = population(args.patients, args.shape)
    print(
        f"population: {args.patients} patients ({args.shape}), {meta['resources']:,} resources, "
        f"{meta['bytes'] / 1e6:.0f} MB NDJSON; {args.rounds} interleaved rounds, medians"
    )
    env = {"SALVAGE_BUCKET_MB": str(args.bucket_mb)}
    parse, engine, base, process = [], [], [], []
    for _ in range(args.rounds):
        parse.append(run_phase("parse", directory))
        engine.append(run_phase("engine", directory, env=env))
        if args.base:
            # the same bucket setting as this checkout's run (before, the base ran with its default)
            base.append(run_phase("engine", directory, pythonpath=args.base, env=env))
        if args.process:
            process.append(run_phase("process", directory, env=env))
    print(_line("parse only (orjson, 1 core):", parse))
    print(_line(f"engine (1 core, {engine[0]['buckets']} bucket(s)):", engine))
    ratios = [e["seconds"] / p["seconds"] for p, e in zip(parse, engine, strict=True)]
    cpu_ratios = [e["cpu"] / p["cpu"] for p, e in zip(parse, engine, strict=True)]
    print(
        f"engine / parse (median of pairs):  {statistics.median(ratios):6.2f}x wall "
        f"{statistics.median(cpu_ratios):6.2f}x CPU   (target <= 2x; pairs "
        + ", ".join(f"{r:.2f}" for r in ratios)
        + ")"
    )
    if base:
        print(_line("base checkout engine:", base))
        speedups = [b["seconds"] / e["seconds"] for b, e in zip(base, engine, strict=True)]
        cpu_speedups = [b["cpu"] / e["cpu"] for b, e in zip(base, engine, strict=True)]
        base_ratio = [b["cpu"] / p["cpu"] for b, p in zip(base, parse, strict=True)]
        print(
            f"base / this engine (median):       {statistics.median(speedups):6.2f}x wall "
            f"{statistics.median(cpu_speedups):6.2f}x CPU   (base / parse "
            f"{statistics.median(base_ratio):.2f}x CPU)"
        )
        if (
            base[0]["failures"] != engine[0]["failures"]
            or base[0]["patients"] != engine[0]["patients"]
        ):
            raise SystemExit("base and this checkout disagree on the population")
    if process:
        print(_line("whole `salvage lines --json`:", process))
        ratios = [r["seconds"] / p["seconds"] for p, r in zip(parse, process, strict=True)]
        print(f"whole process / parse (median):    {statistics.median(ratios):6.2f}x")
    print(f"patients analysed {engine[0]['patients']}, failures found {engine[0]['failures']}")


def memory_curve(args: argparse.Namespace) -> None:
    print(f"peak RSS, SALVAGE_BUCKET_MB={args.bucket_mb} vs one pass (0):", flush=True)
    for size in (int(s) for s in args.memory_curve.split(",")):
        directory, meta = population(size, args.shape)
        bucketed = run_phase("engine", directory, env={"SALVAGE_BUCKET_MB": str(args.bucket_mb)})
        one = run_phase("engine", directory, env={"SALVAGE_BUCKET_MB": "0"})
        whole = run_phase("process", directory, env={"SALVAGE_BUCKET_MB": str(args.bucket_mb)})
        print(
            f"{size:>7} patients {meta['bytes'] / 1e6:7.0f} MB: buckets {bucketed['buckets']:3} "
            f"{bucketed['peak_rss_mb']:6.0f} MB {bucketed['cpu']:7.2f} s CPU | one pass "
            f"{one['peak_rss_mb']:6.0f} MB {one['cpu']:7.2f} s CPU | whole `salvage lines "
            f"--json` with buckets {whole['peak_rss_mb']:6.0f} MB",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--shape", choices=["synthetic", "medadmin"], default="synthetic")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--base", help="PYTHONPATH of a checkout to compare the engine with")
    parser.add_argument("--bucket-mb", type=float, default=64.0)
    parser.add_argument("--no-process", dest="process", action="store_false")
    parser.add_argument("--memory-curve", help="population sizes, e.g. 1000,10000,50000")
    parser.add_argument("--phase", choices=["parse", "engine"])
    parser.add_argument("--dir", type=Path)
    args = parser.parse_args()
    if args.phase:
        result = phase_parse(args.dir) if args.phase == "parse" else phase_engine(args.dir)
        print(json.dumps(result))
    elif args.memory_curve:
        memory_curve(args)
    else:
        compare(args)


if __name__ == "__main__":
    main()
