"""Engine benchmark: a synthetic population in NDJSON (Bulk Data style), engine time vs parse time.

    python3 dev.py bench [--patients 10000]

Prints: resources and bytes generated; time to only parse every line with orjson (the fastest
JSON parser installed); engine total (read + parse + convert + lines + failures for every
patient); their ratio (target <= 2x on one core); and the peak resident memory of each phase
(each phase runs in its own process).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
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


def phase_parse(directory: Path) -> dict:
    import orjson

    started = time.perf_counter()
    n = 0
    for path in sorted(directory.glob("*.ndjson")):
        with path.open("rb") as handle:
            for line in handle:
                orjson.loads(line)
                n += 1
    return {"seconds": time.perf_counter() - started, "resources": n}


def phase_engine(directory: Path) -> dict:
    from salvage.engine import analyse_patient
    from salvage.fhir.records import build_patient_records
    from salvage.tuning import tune_gc

    tune_gc()  # as the `salvage` CLI does
    from salvage.fhir.reader import ReadResult, iter_resources
    from salvage.knowledge import load_knowledge

    kb = load_knowledge()
    started = time.perf_counter()
    read = ReadResult()
    patients, skipped = build_patient_records(iter_resources([str(directory)], read), kb)
    converted = time.perf_counter()
    as_of = date(2026, 6, 30)
    failures = sum(len(analyse_patient(r, kb, as_of).failures) for r in patients.values())
    done = time.perf_counter()
    return {
        "seconds": done - started,
        "convert_seconds": converted - started,
        "analyse_seconds": done - converted,
        "patients": len(patients),
        "failures": failures,
        "skipped": len(skipped) + len(read.skipped),
    }


def run_phase(name: str, directory: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--phase", name, "--dir", str(directory)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--phase", choices=["parse", "engine"])
    parser.add_argument("--dir", type=Path)
    args = parser.parse_args()
    if args.phase:
        result = phase_parse(args.dir) if args.phase == "parse" else phase_engine(args.dir)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    directory = OUT / f"population-{args.patients}"
    stamp = directory / ".complete"
    if not stamp.exists():
        print(f"generating {args.patients} patients in {directory} ...", flush=True)
        count, size = generate(args.patients, directory)
        stamp.write_text(json.dumps({"resources": count, "bytes": size}))
    meta = json.loads(stamp.read_text())
    print(
        f"population: {args.patients} patients, {meta['resources']:,} resources, "
        f"{meta['bytes'] / 1e6:.0f} MB NDJSON"
    )
    parse = min((run_phase("parse", directory) for _ in range(2)), key=lambda r: r["seconds"])
    engine = min((run_phase("engine", directory) for _ in range(2)), key=lambda r: r["seconds"])
    ratio = engine["seconds"] / parse["seconds"]
    print(
        f"parse only (orjson, 1 core):  {parse['seconds']:7.2f} s   "
        f"peak RSS {parse['peak_rss_mb']:6.0f} MB"
    )
    print(
        f"engine total (1 core):        {engine['seconds']:7.2f} s   "
        f"peak RSS {engine['peak_rss_mb']:6.0f} MB "
        f"(read+convert {engine['convert_seconds']:.2f} s, lines+failures "
        f"{engine['analyse_seconds']:.2f} s)"
    )
    print(f"engine / parse ratio:         {ratio:7.2f}x   (target <= 2x)")
    print(
        f"patients analysed {engine['patients']}, failures found {engine['failures']}, "
        f"skipped {engine['skipped']}"
    )


if __name__ == "__main__":
    main()
