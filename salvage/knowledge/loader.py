"""Load, validate and cross-check the knowledge files into a KnowledgeBase (file I/O lives here)."""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from salvage.errors import KnowledgeError
from salvage.knowledge import hiv_loader, schema
from salvage.knowledge.model import (
    CodeSet,
    DelayRule,
    Disease,
    Drug,
    Evidence,
    KnowledgeBase,
    LineRules,
    MaintenanceRule,
    MarkerChartSpec,
    ObservationKind,
    OrderCheckRules,
    Overlay,
    Pathway,
    ProcedureKind,
    QualitativeAnswers,
    Regimen,
    SingleActiveDrugRule,
    TransplantRule,
)

DATA_FILES: dict[str, type[BaseModel]] = {
    "manifest": schema.ManifestFile,
    "evidence": schema.EvidenceFile,
    "drugs": schema.DrugsFile,
    "regimens": schema.RegimensFile,
    "diseases": schema.DiseasesFile,
    "line_rules": schema.LineRulesFile,
    "failures": schema.FailuresFile,
    "observations": schema.ObservationsFile,
    "procedures": schema.ProceduresFile,
    "pathways": schema.PathwaysFile,
    "patient_rules": schema.PatientRulesFile,
    "order_checks": schema.OrderChecksFile,
    "answers": schema.AnswersFile,
    "charts": schema.ChartsFile,
    "class_rules": schema.ClassRulesFile,
    "hiv": schema.HivFile,
    "option_context": schema.OptionContextFile,
    "biomarkers": schema.BiomarkersFile,
}

# Built-in line-rule values used when neither the default nor a disease entry sets them.
_RULE_FALLBACKS: dict[str, Any] = {"min_regimen_days": 14, "default_supply_days": 30}


def read_structured_file(path: Path) -> Any:
    """Read a YAML or JSON file (JSON is YAML); a clear KnowledgeError when it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KnowledgeError(f"{path}: cannot read ({exc.strerror})") from exc
    import yaml  # here: a process that finds the knowledge base cached never needs it

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"{path}: not valid YAML/JSON: {exc}") from exc


def _validate(name: str, model: type[BaseModel], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise KnowledgeError(f"{name}: {where}: {first['msg']}") from exc


def data_dir() -> Path:
    return Path(str(resources.files("salvage.knowledge") / "data"))


def load_raw(directory: Path | None = None) -> dict[str, Any]:
    """Validated pydantic models of every shipped data file, keyed by file stem."""
    directory = directory or data_dir()
    raw = {
        stem: _validate(f"{stem}.yaml", model, read_structured_file(directory / f"{stem}.yaml"))
        for stem, model in DATA_FILES.items()
    }
    hiv_loader.merge_evidence(raw)
    _add_universal_options(raw)
    return raw


def _add_universal_options(raw: dict[str, Any]) -> None:
    """Every oncology pathway ends with the options of option_context.yaml (a clinical trial),
    each under a disease-prefixed id so an overlay can re-rank or disable it per disease."""
    pathways = dict(raw["pathways"].pathways)
    for universal in raw["option_context"].universal_options:
        for disease in universal.diseases:
            if disease not in pathways:
                raise KnowledgeError(
                    f"option_context.yaml: universal option {universal.option.id!r} names "
                    f"unknown pathway {disease!r}"
                )
            option = universal.option.model_copy(update={"id": f"{disease}-{universal.option.id}"})
            pathway = pathways[disease]
            if any(o.id == option.id for o in pathway.options):
                continue  # the pathway already words it itself
            pathways[disease] = pathway.model_copy(update={"options": [*pathway.options, option]})
    raw["pathways"] = schema.PathwaysFile(pathways=pathways)


def _rules(entry: schema.LineRulesEntry, base: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in entry.model_dump().items():
        if value is not None:
            merged[key] = value
    return merged


def _line_rules(values: dict[str, Any]) -> LineRules:
    return LineRules(
        regimen_window_days=values["regimen_window_days"],
        gap_days=values["gap_days"],
        substitutions=tuple(frozenset(pair) for pair in values["substitutions"]),
        maintenance=tuple(
            MaintenanceRule(
                name=m["name"],
                after_classes=frozenset(m["after_classes"]),
                drugs=frozenset(m["drugs"]),
                evidence=tuple(m.get("evidence", [])),
                switch_drugs=frozenset(m.get("switch_drugs", [])),
                min_induction_cycles=int(m.get("min_induction_cycles", 1)),
            )
            for m in values["maintenance"]
        ),
        accompanying=tuple(schema.AccompanyingEntry(**a) for a in values.get("accompanying") or []),
        consolidation=tuple(
            schema.ConsolidationEntry(**c) for c in values.get("consolidation") or []
        ),
        sequences=tuple(schema.SequenceEntry(**q) for q in values.get("sequences") or []),
        procedure_lines=values["procedure_lines"],
        min_regimen_days=values["min_regimen_days"],
        default_supply_days=values["default_supply_days"],
        evidence=tuple(values["evidence"]),
    )


def _cross_check(raw: dict[str, Any]) -> None:
    """References between files must resolve: a typo in a data file is an error, not a miss."""
    drugs = raw["drugs"].drugs
    sources = raw["manifest"].verification_sources
    evidence = raw["evidence"].evidence
    problems: list[str] = []
    for name, drug in drugs.items():
        problems += [
            f"drug {name}: unknown verification source {c.verified!r}"
            for c in drug.rxnorm
            if c.verified not in sources
        ]
    for kind, obs in raw["observations"].observations.items():
        problems += [
            f"observation {kind}: {code} verified by {where!r}, which is "
            + ("not a verification source" if code in obs.loinc else "not its LOINC code")
            for code, where in obs.verified.items()
            if where not in sources or code not in obs.loinc
        ]
    holders: dict[str, str] = {}  # an RxNorm code names one drug or product, never two
    for holder, codes in [
        *((name, drug.rxnorm) for name, drug in drugs.items()),
        *((product.name, product.rxnorm) for product in raw["drugs"].products),
    ]:
        for c in codes:
            if holders.setdefault(c.code, holder) != holder:
                problems.append(f"RxNorm {c.code} is listed for {holders[c.code]} and {holder}")
    label_owner: dict[str, str] = {}
    for name, drug in drugs.items():
        for label in (name, *drug.synonyms):
            if label_owner.setdefault(label.lower(), name) != name:
                problems.append(
                    f"drug {name}: synonym {label!r} already names {label_owner[label.lower()]}"
                )
        basis = drug.anthracycline_equivalence_basis
        if drug.anthracycline_equivalence is not None and basis is None:
            problems.append(f"drug {name}: anthracycline_equivalence without its basis")
        if basis is not None and basis != "assumed" and basis not in evidence:
            problems.append(f"drug {name}: unknown equivalence evidence {basis!r}")
    for product in raw["drugs"].products:
        problems += [
            f"product {product.name}: synonym {label!r} names drug {label_owner[label.lower()]}"
            for label in (product.name, *product.synonyms)
            if label.lower() in label_owner
        ]
    for rule in raw["drugs"].formulations:
        problems += [
            f"formulation: unknown drug {d!r}" for d in (rule.drug, rule.becomes) if d not in drugs
        ]
    for product in raw["drugs"].products:
        problems += [
            f"product {product.name}: unknown ingredient {i!r}"
            for i in product.ingredients
            if i not in drugs
        ]
    for regimen_name, regimen in raw["regimens"].regimens.items():
        problems += [
            f"regimen {regimen_name}: unknown drug {c!r}"
            for c in regimen.components
            if c not in drugs
        ]
        problems += [
            f"regimen {regimen_name}: unknown disease {d!r}"
            for d in regimen.diseases
            if d not in raw["diseases"].diseases
        ]
    rule_entries = [raw["line_rules"].default, *raw["line_rules"].diseases.values()]
    for entry in rule_entries:
        for key in entry.evidence or []:
            if key not in evidence:
                problems.append(f"line rules: unknown evidence {key!r}")
        for pair in entry.substitutions or []:
            problems += [f"line rules: unknown drug {d!r}" for d in pair if d not in drugs]
        for m in entry.maintenance or []:
            problems += [
                f"maintenance {m.name}: unknown drug {d!r}"
                for d in [*m.drugs, *m.switch_drugs]
                if d not in drugs
            ]
        for part in [*(entry.accompanying or []), *(entry.consolidation or [])]:
            names = [*getattr(part, "drugs", []), *getattr(part, "conditioning", [])]
            names += getattr(part, "post_transplant", [])
            problems += [
                f"line rules {part.name}: unknown drug {d!r}" for d in names if d not in drugs
            ]
        for part in [
            *(entry.accompanying or []),
            *(entry.consolidation or []),
            *(entry.sequences or []),
        ]:
            problems += [
                f"line rules {part.name}: unknown evidence {k!r}"
                for k in part.evidence
                if k not in evidence
            ]
        for a in entry.accompanying or []:
            problems += [
                f"line rules {a.name}: unknown regimen {r!r}"
                for r in a.with_regimens
                if r not in raw["regimens"].regimens
            ]
        for c in entry.consolidation or []:
            if c.procedure not in raw["procedures"].procedures:
                problems.append(f"line rules {c.name}: unknown procedure {c.procedure!r}")
        for q in entry.sequences or []:
            problems += [
                f"line rules {q.name}: unknown drug {d!r}"
                for d in [*q.first, *q.then]
                if d not in drugs
            ]
    for section in (raw["line_rules"].intent, raw["line_rules"].response):
        if section is not None:
            problems += [
                f"line rules: unknown evidence {k!r}" for k in section.evidence if k not in evidence
            ]
    for disease_id in raw["line_rules"].diseases:
        if disease_id not in raw["diseases"].diseases:
            problems.append(f"line rules: unknown disease {disease_id!r}")
    for section in ("oncology", "prostate", "hiv"):
        for key in _evidence_keys(getattr(raw["failures"], section)):
            if key not in evidence:
                problems.append(f"failures.{section}: unknown evidence {key!r}")
    problems += _pathway_problems(raw["pathways"].pathways, raw)
    problems += _option_context_problems(raw)
    problems += _order_check_problems(raw["order_checks"], raw)
    rules = raw["patient_rules"]
    problems += [
        f"patient_rules: unknown drug {d!r}"
        for d in (
            rules.cisplatin.drug,
            rules.anthracycline.reference_drug,
            *(r.drug for r in rules.antiretroviral.renal_limits),
            *rules.antiretroviral.hla_b5701_excludes,
            *rules.antiretroviral.hbv_active_drugs,
        )
        if d not in drugs
    ]
    known_classes = {c for d in drugs.values() for c in d.classes}
    problems += [
        f"class_rules: no drug has class {c!r}"
        for c in raw["class_rules"].exclusive_after_failure
        if c not in known_classes
    ]
    problems += [
        f"class_rules.class_labels: no drug has class {c!r}"
        for c in raw["class_rules"].class_labels
        if c not in known_classes
    ]
    problems += _class_rule_problems(raw["class_rules"], raw, known_classes)
    problems += [
        f"patient_rules.performance_status: unknown evidence {k!r}"
        for k in raw["patient_rules"].performance_status.supportive_care_evidence
        + (
            raw["patient_rules"].performance_status.beyond_trial.evidence
            if raw["patient_rules"].performance_status.beyond_trial
            else []
        )
        if k not in evidence
    ]
    for kind, marker in raw["charts"].markers.items():
        if kind not in raw["observations"].observations:
            problems.append(f"charts: unknown observation kind {kind!r}")
        problems += [
            f"charts.{kind}: unknown disease {d!r}"
            for d in marker.diseases
            if d not in raw["diseases"].diseases
        ]
    problems += [
        f"answers: unknown verification source {c.verified!r}"
        for entry in (raw["answers"].positive, raw["answers"].negative)
        for c in entry.codes
        if c.verified not in sources
    ]
    receptor_text = raw["answers"].receptor_text
    problems += [
        f"answers.receptor_text: unknown evidence {e!r}"
        for e in (receptor_text.evidence if receptor_text else [])
        if e not in evidence
    ]
    problems += hiv_loader.problems(raw)
    if problems:
        raise KnowledgeError("; ".join(problems))


def _class_rule_problems(
    rules: schema.ClassRulesFile, raw: dict[str, Any], known_classes: set[str]
) -> list[str]:
    """Sequencing cautions and intolerance substitutions name known drugs, classes, diseases and
    evidence."""
    drugs = raw["drugs"].drugs
    evidence = raw["evidence"].evidence
    problems: list[str] = []
    for rule in rules.sequencing:
        problems += [
            f"sequencing {rule.id}: unknown evidence {k!r}"
            for k in rule.evidence
            if k not in evidence
        ]
        problems += [
            f"sequencing {rule.id}: unknown drug {d!r}"
            for d in (*rule.option_drugs, *rule.prior_drugs)
            if d not in drugs
        ]
        problems += [
            f"sequencing {rule.id}: no drug has class {c!r}"
            for c in (*rule.option_classes, *rule.prior_classes, *rule.not_received_classes)
            if c not in known_classes
        ]
    for sub in rules.substitutions:
        where = f"substitution of {sub.not_tolerated} ({sub.disease})"
        problems += [f"{where}: unknown evidence {k!r}" for k in sub.evidence if k not in evidence]
        problems += [
            f"{where}: unknown drug {d!r}"
            for d in (sub.not_tolerated, sub.substitute)
            if d is not None and d not in drugs
        ]
        if sub.disease not in raw["diseases"].diseases:
            problems.append(f"{where}: unknown disease")
    return problems


def _order_check_problems(checks: schema.OrderChecksFile, raw: dict[str, Any]) -> list[str]:
    evidence = raw["evidence"].evidence
    problems = [
        f"order_checks: unknown evidence {k!r}"
        for k in (
            *checks.delay.evidence,
            *(checks.delay.cellular_therapy.evidence if checks.delay.cellular_therapy else ()),
            *checks.single_active_drug.evidence,
        )
        if k not in evidence
    ]
    problems += [
        f"order_checks.delay: unknown disease {d!r}"
        for d in checks.delay.days_by_disease
        if d not in raw["diseases"].diseases
    ]
    classes = {c for d in raw["drugs"].drugs.values() for c in d.classes}
    problems += [
        f"order_checks.referrals: no drug has class {c!r}"
        for c in checks.referrals
        if c not in classes
    ]
    problems += [
        f"order_checks: unknown companion drug {d!r}"
        for d in checks.companion_drugs
        if d not in raw["drugs"].drugs
    ]
    return problems


def _pathway_problems(pathways: dict[str, Any], raw: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    evidence = raw["evidence"].evidence
    for disease, pathway in pathways.items():
        if disease not in raw["diseases"].diseases:
            problems.append(f"pathway {disease}: unknown disease")
        for option in pathway.options:
            problems += _option_problems(option, raw)
        problems += [
            f"pathway {disease}: unknown backbone drug {d!r}"
            for d in pathway.backbone_drugs
            if d not in raw["drugs"].drugs
        ]
    marker_codes = raw["biomarkers"].codes
    marker_kind = raw["observations"].observations.get(marker_codes.observation_kind)
    wanted = {*marker_codes.variant_panels} | {
        c for m in raw["biomarkers"].biomarkers.values() for c in m.loinc
    }
    if marker_kind is None:
        problems.append(f"biomarkers: unknown observation kind {marker_codes.observation_kind!r}")
    else:
        problems += [
            f"biomarkers: result code {c} is not listed under {marker_codes.observation_kind}"
            for c in sorted(wanted - set(marker_kind.loinc))
        ]
    for marker_id, marker in raw["biomarkers"].biomarkers.items():
        problems += [
            f"biomarker {marker_id}: unknown evidence {k!r}"
            for k in marker.evidence
            if k not in evidence
        ]
        problems += [
            f"biomarker {marker_id}: unknown disease {d!r}"
            for d in marker.diseases
            if d not in raw["diseases"].diseases
        ]
    for ref in _evidence_keys(raw["patient_rules"].model_dump()) + list(
        raw["diseases"].hiv_status.evidence
    ):
        if ref not in evidence:
            problems.append(f"patient rules or HIV status: unknown evidence {ref!r}")
    for rule_disease in raw["patient_rules"].transplant_eligibility:
        if rule_disease not in raw["diseases"].diseases:
            problems.append(f"transplant eligibility: unknown disease {rule_disease!r}")
    return problems


def _option_context_problems(raw: dict[str, Any]) -> list[str]:
    context: schema.OptionContextFile = raw["option_context"]
    evidence = raw["evidence"].evidence
    keys = [*context.goals_of_care.evidence]
    problems: list[str] = []
    for disease, intent in context.intents.items():
        keys += intent.evidence
        if disease not in raw["pathways"].pathways:
            problems.append(f"option_context intents: unknown pathway {disease!r}")
        known = {
            o.id
            for o in raw["pathways"]
            .pathways.get(disease, schema.DiseasePathway(options=[]))
            .options
        }
        problems += [
            f"option_context intents.{disease}: unknown option {o!r}"
            for o in intent.options
            if o not in known
        ]
    return problems + [f"option_context: unknown evidence {k!r}" for k in keys if k not in evidence]


def _option_problems(option: Any, raw: dict[str, Any]) -> list[str]:
    problems = [
        f"option {option.id}: unknown evidence {k!r}"
        for k in option.evidence
        if k not in raw["evidence"].evidence
    ]
    if option.kind == "regimen" and option.regimen not in raw["regimens"].regimens:
        problems.append(f"option {option.id}: unknown regimen {option.regimen!r}")
    if option.kind != "regimen" and not option.label:
        problems.append(f"option {option.id}: a {option.kind} option needs a label")
    classes = {c for d in raw["drugs"].drugs.values() for c in d.classes}
    problems += [
        f"option {option.id}: prior_classes names {c!r}, a class no drug has"
        for c in option.when.prior_classes
        if c not in classes
    ]
    problems += [
        f"option {option.id}: not_after_classes, prior_any_classes or after_classes names "
        f"{c!r}, a class no drug has"
        for c in [
            *option.when.not_after_classes,
            *option.when.prior_any_classes,
            *option.when.after_classes,
        ]
        if c not in classes
    ]
    markers = raw["biomarkers"].biomarkers
    conditional = [(c.biomarker, c.results) for c in option.biomarker_cautions]
    for marker, accepted in [*option.when.biomarkers.items(), *conditional]:
        if marker not in markers:
            problems.append(f"option {option.id}: unknown biomarker {marker!r}")
            continue
        known = {"detected", "not-detected", "unknown"} | {
            lv.level for lv in markers[marker].levels
        }
        known |= {level for _, level in markers[marker].percent_levels}
        problems += [
            f"option {option.id}: biomarker {marker} has no result {a!r}"
            for a in accepted
            if a not in known
        ]
    problems += [
        f"option {option.id}: after_class_failure or rechallenge_after_months names {c!r}, not "
        "in class_rules.yaml"
        for c in [*option.when.after_class_failure, *option.when.rechallenge_after_months]
        if c not in raw["class_rules"].exclusive_after_failure
    ]
    return problems


def apply_overlay(raw: dict[str, Any], overlay_path: Path) -> dict[str, Any]:
    """Merge an institution's overlay (validated like the shipped files) into the pathways."""
    overlay = _validate(overlay_path.name, schema.OverlayFile, read_structured_file(overlay_path))
    pathways = {k: v.model_copy(deep=True) for k, v in raw["pathways"].pathways.items()}
    known = {o.id for p in pathways.values() for o in p.options}
    known |= {o.id for o in raw["hiv"].regimens.options}
    problems: list[str] = []
    for disease, options in overlay.add.items():
        if disease not in pathways:
            problems.append(f"overlay adds to unknown disease {disease!r}")
            continue
        for option in options:
            problems += _option_problems(option, raw)
            known.add(option.id)
        pathways[disease] = pathways[disease].model_copy(
            update={"options": [*pathways[disease].options, *options]}
        )
    problems += [
        f"overlay names unknown option {o!r}"
        for o in [*overlay.disable, *overlay.rerank]
        if o not in known
    ]
    if problems:
        raise KnowledgeError(f"{overlay_path}: " + "; ".join(problems))
    merged = dict(raw)
    merged["pathways"] = schema.PathwaysFile(pathways=pathways)
    if overlay.delay is not None:
        checks: schema.OrderChecksFile = raw["order_checks"]
        delay = checks.delay.model_copy(
            update={
                "default_days": overlay.delay.default_days or checks.delay.default_days,
                "stale_failure_days": (
                    overlay.delay.stale_failure_days or checks.delay.stale_failure_days
                ),
                "days_by_disease": {
                    **checks.delay.days_by_disease,
                    **overlay.delay.days_by_disease,
                },
                "cellular_therapy": (
                    checks.delay.cellular_therapy.model_copy(
                        update={"days": overlay.delay.cellular_therapy_days}
                    )
                    if checks.delay.cellular_therapy and overlay.delay.cellular_therapy_days
                    else checks.delay.cellular_therapy
                ),
            }
        )
        merged["order_checks"] = checks.model_copy(update={"delay": delay})
    merged["overlay"] = overlay
    return merged


def _evidence_keys(node: Any) -> list[str]:
    if isinstance(node, dict):
        keys = list(node.get("evidence", [])) if isinstance(node.get("evidence"), list) else []
        for value in node.values():
            keys += _evidence_keys(value)
        return keys
    return []


def _answer_words(entry: schema.AnswerEntry) -> frozenset[str]:
    return frozenset(c.code.lower() for c in entry.codes) | {t.lower() for t in entry.text}


def build(raw: dict[str, Any]) -> KnowledgeBase:
    _cross_check(raw)
    drugs_file: schema.DrugsFile = raw["drugs"]
    drugs = {
        name: Drug(
            name=name,
            role=d.role,
            classes=frozenset(d.classes),
            continuous=d.continuous,
            anthracycline_equivalence=d.anthracycline_equivalence,
            anthracycline_equivalence_basis=d.anthracycline_equivalence_basis,
            rxnorm_ingredient=next((c.code for c in d.rxnorm if c.tty == "IN"), None),
        )
        for name, d in drugs_file.drugs.items()
    }
    code_index: dict[str, tuple[str, ...]] = {}
    name_index: dict[str, tuple[str, ...]] = {}
    for name, d in drugs_file.drugs.items():
        for code in d.rxnorm:
            code_index[code.code] = (name,)
        for label in (name, *d.synonyms):
            name_index[label.lower()] = (name,)
    for product in drugs_file.products:
        ingredients = tuple(sorted(product.ingredients))
        for code in product.rxnorm:
            code_index[code.code] = ingredients
        for label in (product.name, *product.synonyms):
            name_index[label.lower()] = ingredients

    base = _rules(raw["line_rules"].default, _RULE_FALLBACKS)
    disease_rules = {
        disease_id: _line_rules(_rules(entry, base))
        for disease_id, entry in raw["line_rules"].diseases.items()
    }
    observation_kinds = {
        kind: ObservationKind(
            id=kind,
            loinc=frozenset(o.loinc),
            unit=o.unit,
            convert=dict(o.convert),
            unitless=o.unitless,
            answers=dict(o.answers),
            not_detected=tuple(t.lower() for t in o.not_detected),
            detected_below=tuple(t.lower() for t in o.detected_below),
            text_answers=o.text_answers,
        )
        for kind, o in raw["observations"].observations.items()
    }
    loinc_index = {code: kind for kind, o in observation_kinds.items() for code in o.loinc}
    checks: schema.OrderChecksFile = raw["order_checks"]
    receptor_text = raw["answers"].receptor_text
    return KnowledgeBase(
        version=raw["manifest"].kb_version,
        disclaimer=" ".join(raw["manifest"].disclaimer.split()),
        drugs=drugs,
        code_index=code_index,
        name_index=name_index,
        regimens={
            name: Regimen(
                name=name,
                components=frozenset(r.components),
                setting=r.setting,
                diseases=tuple(r.diseases),
                cycle_days=r.cycle_days,
            )
            for name, r in raw["regimens"].regimens.items()
        },
        diseases={
            did: Disease(
                id=did,
                name=d.name,
                snomed=frozenset(d.snomed),
                icd10cm=tuple(d.icd10cm),
                domain=d.domain,
                drug_classes=frozenset(d.drug_classes),
            )
            for did, d in raw["diseases"].diseases.items()
        },
        transplant_rules={
            did: TransplantRule(
                disease=did,
                age_at_least=t.not_candidate_when.age_at_least,
                ecog_at_least=t.not_candidate_when.ecog_at_least,
                creatinine_clearance_below=t.not_candidate_when.creatinine_clearance_below,
                lvef_below=t.not_candidate_when.lvef_below,
                ast_alt_above_uln_times=t.not_candidate_when.ast_alt_above_uln_times,
                age_at_most=t.candidate_when.age_at_most,
                ecog_at_most=t.candidate_when.ecog_at_most,
                evidence=tuple(t.evidence),
                decision_from_age=t.age_is_a_decision.from_age if t.age_is_a_decision else None,
                decision_reason=t.age_is_a_decision.reason if t.age_is_a_decision else "",
                decision_evidence=(
                    tuple(t.age_is_a_decision.evidence) if t.age_is_a_decision else ()
                ),
            )
            for did, t in raw["patient_rules"].transplant_eligibility.items()
        },
        karnofsky_to_ecog=tuple(
            sorted(
                (
                    (row.karnofsky_at_least, row.ecog)
                    for row in raw["patient_rules"].performance_status.karnofsky_to_ecog
                ),
                reverse=True,
            )
        ),
        formulations=tuple(
            (f.drug, frozenset(w.lower() for w in f.words), f.becomes)
            for f in drugs_file.formulations
        ),
        prep_context=CodeSet(
            snomed=frozenset(raw["diseases"].hiv_status.prep_context.snomed),
            icd10cm=tuple(raw["diseases"].hiv_status.prep_context.icd10cm),
        ),
        default_rules=_line_rules(base),
        disease_rules=disease_rules,
        intent_rules=raw["line_rules"].intent,
        response_rules=raw["line_rules"].response,
        observation_kinds=observation_kinds,
        loinc_index=loinc_index,
        procedures={
            pid: ProcedureKind(
                id=pid,
                label=p.label,
                codes=frozenset((c.system, c.code) for c in p.codes),
                text=tuple(t.lower() for t in p.text),
            )
            for pid, p in raw["procedures"].procedures.items()
        },
        failures=raw["failures"],
        pathways={
            disease: Pathway(
                backbone_drugs=frozenset(p.backbone_drugs),
                backbone_reason=" ".join((p.backbone_reason or "").split()),
                backbone_reasons={d: " ".join(r.split()) for d, r in p.backbone_reasons.items()},
                options=tuple(p.options),
            )
            for disease, p in raw["pathways"].pathways.items()
        },
        patient_rules=raw["patient_rules"],
        option_context=raw["option_context"],
        exclusive_classes=dict(raw["class_rules"].exclusive_after_failure),
        class_labels=dict(raw["class_rules"].class_labels),
        sequencing=tuple(raw["class_rules"].sequencing),
        substitutions=tuple(raw["class_rules"].substitutions),
        overlay=(
            Overlay(
                institution=raw["overlay"].institution,
                disable=frozenset(raw["overlay"].disable),
                rerank=dict(raw["overlay"].rerank),
            )
            if raw.get("overlay")
            else None
        ),
        markers=tuple(
            MarkerChartSpec(
                kind=kind,
                label=m.label,
                unit=observation_kinds[kind].unit or "",
                diseases=frozenset(m.diseases),
                log_scale=m.log_scale,
                floor=m.floor,
            )
            for kind, m in raw["charts"].markers.items()
        ),
        answers=QualitativeAnswers(
            positive=_answer_words(raw["answers"].positive),
            negative=_answer_words(raw["answers"].negative),
            receptor_label=receptor_text.label if receptor_text else "",
            receptor_percent=receptor_text.percent if receptor_text else "",
            receptor_ambiguous=receptor_text.ambiguous if receptor_text else "",
            receptor_positive_from=receptor_text.positive_from_percent if receptor_text else None,
        ),
        order_checks=OrderCheckRules(
            delay=DelayRule(
                default_days=checks.delay.default_days,
                stale_failure_days=checks.delay.stale_failure_days,
                stale_failure_text=" ".join(checks.delay.stale_failure_text.split()),
                days_by_disease=dict(checks.delay.days_by_disease),
                evidence=tuple(checks.delay.evidence),
                cellular_classes=frozenset(
                    checks.delay.cellular_therapy.classes if checks.delay.cellular_therapy else ()
                ),
                cellular_days=(
                    checks.delay.cellular_therapy.days if checks.delay.cellular_therapy else 0
                ),
                cellular_evidence=tuple(
                    checks.delay.cellular_therapy.evidence if checks.delay.cellular_therapy else ()
                ),
            ),
            single_active_drug=SingleActiveDrugRule(
                min_new_active_drugs=checks.single_active_drug.min_new_active_drugs,
                evidence=tuple(checks.single_active_drug.evidence),
            ),
            companion_drugs=frozenset(checks.companion_drugs),
            referrals=dict(checks.referrals),
        ),
        hiv=hiv_loader.build_hiv(raw["hiv"]),
        biomarkers=raw["biomarkers"],
        performance_text=raw["observations"].performance_text,
        evidence={
            key: Evidence(
                key=key,
                label=e.label,
                citation=e.citation,
                url=e.url,
                year=e.year,
                pmid=e.pmid,
                doi=e.doi,
                level=e.level,
            )
            for key, e in raw["evidence"].evidence.items()
        },
    )


# Where the validated knowledge base is kept between processes: a directory, or "off".
CACHE_VARIABLE = "SALVAGE_KB_CACHE"


def cache_dir() -> Path | None:
    """The knowledge-base cache directory (SALVAGE_KB_CACHE, else the user's cache), or None."""
    setting = os.environ.get(CACHE_VARIABLE)
    if setting == "off":
        return None
    if setting:
        return Path(setting)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "salvage-cds"


def _cache_key(directory: Path, overlay: str | None) -> str | None:
    """A digest of everything the built knowledge base depends on: every data file, the overlay,
    the loader and model code, and the Python version. None when a file cannot be read (the
    ordinary load then reports the problem)."""
    digest = hashlib.sha256(sys.version.encode())
    try:
        code = sorted(Path(__file__).parent.glob("*.py"))
        for path in [*code, *sorted(directory.glob("*.yaml"))]:
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        if overlay:
            digest.update(str(Path(overlay).resolve()).encode() + b"\0")
            digest.update(Path(overlay).read_bytes())
    except OSError:
        return None
    return digest.hexdigest()


def _private(path: Path) -> bool:
    """Only a file this user owns, in a folder this user owns, that no one else may write, is
    unpickled: whoever could write it could already run code as this user."""
    if not hasattr(os, "getuid"):
        return True
    for item in (path.parent, path):
        status = item.stat()
        if status.st_uid != os.getuid() or status.st_mode & 0o022:
            return False
    return True


def _cached(key: str, folder: Path) -> KnowledgeBase | None:
    path = folder / f"kb-{key}.pickle"
    try:
        if not _private(path):
            return None
        kb = pickle.loads(path.read_bytes())  # noqa: S301 (our own file, checked by _private)
    except Exception:  # absent, truncated or from another version: build it again
        return None
    if not isinstance(kb, KnowledgeBase):
        return None
    try:
        os.utime(path)  # recently used: pruned last
    except OSError:
        pass
    return kb


def _store(key: str, folder: Path, kb: KnowledgeBase) -> None:
    """Write atomically (another process may read it meanwhile); a cache that cannot be written
    is not an error."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".kb-", suffix=".tmp")
        with os.fdopen(handle, "wb") as out:
            out.write(pickle.dumps(kb, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(temporary, folder / f"kb-{key}.pickle")
        for old in sorted(folder.glob("kb-*.pickle"), key=_age)[:-_CACHE_KEPT]:
            old.unlink(missing_ok=True)  # older data files or code: never read again
    except OSError:
        return


_CACHE_KEPT = 64  # cached knowledge bases kept (overlays, checkouts and test runs side by side)


def _age(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


@functools.lru_cache(maxsize=8)
def load_knowledge(directory: str | None = None, overlay: str | None = None) -> KnowledgeBase:
    """The knowledge base from the shipped files (or another directory, for tests), with an
    institution overlay merged when one is named (SALVAGE_KB_OVERLAY).

    The validated result is cached on disk (SALVAGE_KB_CACHE) under a digest of the data files,
    the overlay and this package's code, so any change to them builds and validates it again."""
    folder = cache_dir()
    source = Path(directory) if directory else data_dir()
    key = _cache_key(source, overlay) if folder is not None else None
    if folder is not None and key is not None:
        kb = _cached(key, folder)
        if kb is not None:
            return kb
    raw = load_raw(source)
    if overlay:
        raw = apply_overlay(raw, Path(overlay))
    kb = build(raw)
    if folder is not None and key is not None:
        _store(key, folder, kb)
    return kb
