"""Read FHIR R4 input: Bundle JSON (searchset, collection, transaction), NDJSON, or a directory."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from salvage.engine.records import Skipped
from salvage.errors import InputError

INPUT_SUFFIXES = (".json", ".ndjson", ".jsonl")

# FHIR R4 resource types that R4B (the models we validate with) renamed or removed.
_R4_ONLY_TYPES = frozenset({
    "EffectEvidenceSynthesis", "MedicinalProduct", "MedicinalProductAuthorization",
    "MedicinalProductContraindication", "MedicinalProductIndication", "MedicinalProductIngredient",
    "MedicinalProductInteraction", "MedicinalProductManufactured", "MedicinalProductPackaged",
    "MedicinalProductPharmaceutical", "MedicinalProductUndesirableEffect", "RiskEvidenceSynthesis",
    "SubstanceNucleicAcid", "SubstancePolymer", "SubstanceProtein", "SubstanceReferenceInformation",
    "SubstanceSourceMaterial", "SubstanceSpecification",
})


@functools.lru_cache(maxsize=512)
def is_resource_type(name: str) -> bool:
    """True for a FHIR R4 resource type name (checked against the fhir.resources R4B models)."""
    if name in _R4_ONLY_TYPES:
        return True
    if not name or not name[0].isupper() or not name.isalnum():
        return False
    from fhir.resources.R4B import get_fhir_model_class
    from fhir.resources.R4B.resource import Resource

    try:
        model = get_fhir_model_class(name)
    except (KeyError, ValueError, ImportError, AttributeError):
        return False
    return isinstance(model, type) and issubclass(model, Resource)


@dataclass
class ReadResult:
    resources: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)  # whole files that could not be used
    skipped: list[Skipped] = field(default_factory=list)  # single resources left out


def input_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.is_file() and p.suffix in INPUT_SUFFIXES)
        else:
            files.append(path)
    return files


def read_paths(paths: list[str]) -> ReadResult:
    result = ReadResult()
    for path in input_files(paths):
        try:
            if path.suffix in (".ndjson", ".jsonl"):
                _read_ndjson(path, result)
            else:
                _read_json(path, result)
        except InputError as exc:
            result.errors.append(exc)
    return result


def _accept(resource: Any, origin: str, result: ReadResult) -> None:
    if not isinstance(resource, dict):
        result.skipped.append(Skipped(origin, "", "not a JSON object"))
        return
    rtype = resource.get("resourceType")
    source = f"{rtype}/{resource.get('id', '')}"
    if not isinstance(rtype, str) or not is_resource_type(rtype):
        result.skipped.append(Skipped(origin, source, f"unknown resourceType {rtype!r}"))
        return
    if rtype == "Bundle":
        _read_bundle(resource, origin, result)
        return
    result.resources.append((resource, origin))


def _read_json(path: Path, result: ReadResult) -> None:
    try:
        document = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path=str(path)) from exc
    except orjson.JSONDecodeError as exc:
        raise InputError(f"malformed JSON ({exc.msg} at line {exc.lineno})", path=str(path)) from exc
    if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
        raise InputError("not a FHIR document (no resourceType)", path=str(path))
    if not is_resource_type(document["resourceType"]):
        raise InputError(f"unknown resourceType {document['resourceType']!r}", path=str(path))
    before = len(result.resources)
    _accept(document, str(path), result)
    if len(result.resources) == before and document["resourceType"] != "Bundle":
        raise InputError("the only resource in the file is invalid", path=str(path))


def _read_ndjson(path: Path, result: ReadResult) -> None:
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path=str(path)) from exc
    good = bad = 0
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            origin = f"{path}:{number}"
            try:
                resource = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                result.skipped.append(Skipped(origin, "", f"malformed JSON ({exc.msg})"))
                bad += 1
                continue
            before = len(result.resources)
            _accept(resource, origin, result)
            good += len(result.resources) > before
    if bad and not good:
        raise InputError("no line could be read as a FHIR resource", path=str(path))


def _read_bundle(bundle: dict[str, Any], origin: str, result: ReadResult) -> None:
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        result.skipped.append(Skipped(origin, f"Bundle/{bundle.get('id', '')}", "entry is not a list"))
        return
    aliases = _aliases(entries)
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if resource is None:
            continue
        if isinstance(resource, dict) and aliases:
            resource = _resolve(resource, entry, aliases)
        _accept(resource, f"{origin}#entry[{index}]", result)


def _aliases(entries: list[Any]) -> dict[str, str]:
    """fullUrl (urn:uuid:... or absolute) -> 'Type/id', for references inside a transaction."""
    aliases: dict[str, str] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            continue
        full_url = entry.get("fullUrl")
        resource = entry["resource"]
        if isinstance(full_url, str) and resource.get("resourceType"):
            rid = resource.get("id") or full_url.rsplit(":", 1)[-1].rsplit("/", 1)[-1]
            aliases[full_url] = f"{resource['resourceType']}/{rid}"
    return aliases


def _resolve(resource: dict[str, Any], entry: dict[str, Any], aliases: dict[str, str]) -> dict[str, Any]:
    """Give id-less transaction resources their fullUrl id, and point references at Type/id."""
    patched = resource
    if not resource.get("id") and isinstance(entry.get("fullUrl"), str):
        patched = {**resource, "id": aliases[entry["fullUrl"]].split("/", 1)[1]}
    for key in ("subject", "patient", "medicationReference"):
        ref = patched.get(key)
        if isinstance(ref, dict) and ref.get("reference") in aliases:
            patched = {**patched, key: {**ref, "reference": aliases[ref["reference"]]}}
    return patched
