"""Read FHIR R4 input: Bundle JSON (searchset, collection, transaction), NDJSON, or a directory."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from salvage.errors import InputError
from salvage.fhir.decode import DROP, KEEP, ResourceFilter
from salvage.fhir.record_base import PlainAdministration, PlainObservation
from salvage.fhir.records import Skipped, origin_text
from salvage.fhir.typed_records import ADMINISTRATION_PREFIX

INPUT_SUFFIXES = (".json", ".ndjson", ".jsonl")

# FHIR R4 resource types that R4B (the models we validate with) renamed or removed.
_R4_ONLY_TYPES = frozenset(
    {
        "EffectEvidenceSynthesis",
        "MedicinalProduct",
        "MedicinalProductAuthorization",
        "MedicinalProductContraindication",
        "MedicinalProductIndication",
        "MedicinalProductIngredient",
        "MedicinalProductInteraction",
        "MedicinalProductManufactured",
        "MedicinalProductPackaged",
        "MedicinalProductPharmaceutical",
        "MedicinalProductUndesirableEffect",
        "RiskEvidenceSynthesis",
        "SubstanceNucleicAcid",
        "SubstancePolymer",
        "SubstanceProtein",
        "SubstanceReferenceInformation",
        "SubstanceSourceMaterial",
        "SubstanceSpecification",
    }
)


# Where a resource came from: (file, NDJSON line number) or (file, "#entry[i]") for Bundles.
Origin = tuple[str, int | str]
_SEEN_TYPES: set[str] = set()  # resource types already confirmed, for the NDJSON fast path
_ADMINISTRATION = "MedicationAdministration"
_TYPED = frozenset({_ADMINISTRATION, "Observation"})  # decoded typed when of a plain shape


@functools.lru_cache(maxsize=512)
def is_resource_type(name: str) -> bool:
    """True for a FHIR R4 resource type name (checked against the fhir.resources R4B models).
    Answers are remembered on disk next to the knowledge-base cache: importing the models to
    check a name is most of a small run's start-up."""
    if name in _R4_ONLY_TYPES:
        return True
    if not name or not name[0].isupper() or not name.isalnum():
        return False
    remembered = _remembered_types()
    if name in remembered:
        known = remembered[name]
    else:
        known = remembered[name] = _check_resource_type(name)
        _remember_types(remembered)
    if known:
        _SEEN_TYPES.add(name)
    return known


@functools.lru_cache(maxsize=1)
def _types_file() -> Path | None:
    import fhir.resources

    from salvage.knowledge.loader import cache_dir

    folder = cache_dir()
    version = getattr(fhir.resources, "__version__", "unknown")
    return None if folder is None else folder / f"resource-types-{version}.json"


@functools.lru_cache(maxsize=1)
def _remembered_types() -> dict[str, bool]:
    path = _types_file()
    try:
        data = orjson.loads(path.read_bytes()) if path is not None else {}
    except (OSError, orjson.JSONDecodeError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, bool)}


def _remember_types(types: dict[str, bool]) -> None:
    path = _types_file()
    if path is None:
        return
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_bytes(orjson.dumps(types))
        os.replace(temporary, path)
    except OSError:
        return  # not remembered: checked again next time


def _check_resource_type(name: str) -> bool:
    from fhir.resources.R4B import get_fhir_model_class
    from fhir.resources.R4B.resource import Resource

    try:
        model = get_fhir_model_class(name)
    except (KeyError, ValueError, ImportError, AttributeError):
        return False
    return isinstance(model, type) and issubclass(model, Resource)


@dataclass
class ReadResult:
    """What reading found besides the resources themselves (which are streamed, not kept)."""

    count: int = 0  # resources handed on
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


def iter_resources(
    paths: list[str], result: ReadResult, only_read: ResourceFilter | None = None
) -> Iterator[tuple[dict[str, Any], Origin]]:
    """Stream (resource, origin) from every input file; problems are recorded in ``result``.
    With `only_read` (the fast path), NDJSON resources the converters would ignore are counted
    but never decoded in full nor handed on; without it every resource is (the general path)."""
    for path in input_files(paths):
        try:
            if path.suffix in (".ndjson", ".jsonl"):
                if only_read is not None:
                    yield from _read_ndjson_fast(path, result, only_read)
                else:
                    yield from _read_ndjson(path, result)
            else:
                yield from _read_json(path, result)
        except InputError as exc:
            result.errors.append(exc)


def _accept(
    resource: Any, origin: Origin, result: ReadResult
) -> Iterator[tuple[dict[str, Any], Origin]]:
    if not isinstance(resource, dict):
        result.skipped.append(Skipped(origin_text(origin), "", "not a JSON object"))
        return
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or not is_resource_type(rtype):
        source = f"{rtype}/{resource.get('id', '')}"
        reason = f"unknown resourceType {rtype!r}"
        result.skipped.append(Skipped(origin_text(origin), source, reason))
        return
    if rtype == "Bundle":
        yield from _read_bundle(resource, origin, result)
        return
    result.count += 1
    yield resource, origin


def _read_json(path: Path, result: ReadResult) -> Iterator[tuple[dict[str, Any], Origin]]:
    try:
        document = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path=str(path)) from exc
    except orjson.JSONDecodeError as exc:
        raise InputError(
            f"malformed JSON ({exc.msg} at line {exc.lineno})", path=str(path)
        ) from exc
    if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
        raise InputError("not a FHIR document (no resourceType)", path=str(path))
    if not is_resource_type(document["resourceType"]):
        raise InputError(f"unknown resourceType {document['resourceType']!r}", path=str(path))
    yield from _accept(document, (str(path), ""), result)


def _read_ndjson(path: Path, result: ReadResult) -> Iterator[tuple[dict[str, Any], Origin]]:
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path=str(path)) from exc
    name = str(path)
    loads = orjson.loads
    good = bad = 0
    with handle:
        for number, line in enumerate(handle, start=1):
            try:
                resource = loads(line)
            except orjson.JSONDecodeError as exc:
                if not line.strip():
                    continue
                result.skipped.append(
                    Skipped(f"{name}:{number}", "", f"malformed JSON ({exc.msg})")
                )
                bad += 1
                continue
            # Fast path for the common case: one known resource per line (Bulk Data export).
            if (
                type(resource) is dict
                and resource.get("resourceType") in _SEEN_TYPES
                and resource["resourceType"] != "Bundle"
            ):
                result.count += 1
                good += 1
                yield resource, (name, number)
                continue
            before = result.count
            yield from _accept(resource, (name, number), result)
            good += result.count > before
    if bad and not good:
        raise InputError("no line could be read as a FHIR resource", path=str(path))


def iter_lines_or_resources(
    paths: list[str], result: ReadResult, only_read: ResourceFilter
) -> Iterator[tuple[tuple[bytes, Any] | dict[str, Any], Origin]]:
    """iter_resources on the fast path, except that NDJSON lines kept by the first look come as
    (raw bytes, the first look), not yet decoded (to be routed to a bucket on disk,
    salvage/fhir/buckets.py); everything else comes decoded, as iter_resources gives it."""
    for path in input_files(paths):
        try:
            if path.suffix in (".ndjson", ".jsonl"):
                yield from _read_ndjson_fast(path, result, only_read, raw=True)
            else:
                yield from _read_json(path, result)
        except InputError as exc:
            result.errors.append(exc)


def _read_ndjson_fast(
    path: Path, result: ReadResult, only_read: ResourceFilter, raw: bool = False
) -> Iterator[tuple[Any, Origin]]:
    """_read_ndjson with a typed first look at each line (salvage/fhir/decode.py): dropped lines
    are counted exactly as the general path counts them; any other line is handled by it."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path=str(path)) from exc
    name = str(path)
    loads = orjson.loads
    look = only_read.line
    administration = only_read.typed.administration
    observation = only_read.typed.observation
    good = bad = 0
    with handle:
        for number, line in enumerate(handle, start=1):
            plain_form = not raw and line.startswith(ADMINISTRATION_PREFIX)
            if plain_form and _ADMINISTRATION in _SEEN_TYPES:
                # Always kept: decoded typed straight away, without a first look.
                plain: PlainAdministration | PlainObservation | None = administration(line)
                if plain is not None:
                    result.count += 1
                    good += 1
                    yield plain, (name, number)
                    continue
            verdict, rtype = look(line, _SEEN_TYPES)
            if verdict == DROP:
                result.count += 1
                good += 1
                continue
            if verdict == KEEP and not raw and rtype in _TYPED and not plain_form:
                # decoded once, typed (salvage/fhir/typed_records.py); an administration in
                # that form was tried above (a type not yet confirmed goes the general path)
                plain = (administration if rtype == _ADMINISTRATION else observation)(line)
                if plain is not None:
                    result.count += 1
                    good += 1
                    yield plain, (name, number)
                    continue
            if verdict == KEEP and raw:
                result.count += 1
                good += 1
                yield (line, only_read.head), (name, number)
                continue
            if verdict == KEEP:
                try:
                    resource = loads(line)
                except orjson.JSONDecodeError:
                    pass  # JSON the first look skipped over but orjson refuses: general path
                else:
                    result.count += 1
                    good += 1
                    yield resource, (name, number)
                    continue
            try:
                resource = loads(line)
            except orjson.JSONDecodeError as exc:
                if not line.strip():
                    continue
                result.skipped.append(
                    Skipped(f"{name}:{number}", "", f"malformed JSON ({exc.msg})")
                )
                bad += 1
                continue
            before = result.count
            yield from _accept(resource, (name, number), result)
            good += result.count > before
    if bad and not good:
        raise InputError("no line could be read as a FHIR resource", path=str(path))


def _read_bundle(
    bundle: dict[str, Any], origin: Origin, result: ReadResult
) -> Iterator[tuple[dict[str, Any], Origin]]:
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        result.skipped.append(
            Skipped(origin_text(origin), f"Bundle/{bundle.get('id', '')}", "entry is not a list")
        )
        return
    aliases = _aliases(entries)
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if resource is None:
            continue
        if isinstance(resource, dict) and aliases:
            resource = _resolve(resource, entry, aliases)
        yield from _accept(resource, (origin_text(origin), f"#entry[{index}]"), result)


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


def _resolve(
    resource: dict[str, Any], entry: dict[str, Any], aliases: dict[str, str]
) -> dict[str, Any]:
    """Give id-less transaction resources their fullUrl id, and point references at Type/id."""
    patched = resource
    if not resource.get("id") and isinstance(entry.get("fullUrl"), str):
        patched = {**resource, "id": aliases[entry["fullUrl"]].split("/", 1)[1]}
    for key in ("subject", "patient", "medicationReference"):
        ref = patched.get(key)
        if isinstance(ref, dict) and ref.get("reference") in aliases:
            patched = {**patched, key: {**ref, "reference": aliases[ref["reference"]]}}
    return patched
