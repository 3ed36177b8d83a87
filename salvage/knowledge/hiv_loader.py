"""Cross-check hiv.yaml against the other knowledge files and build its typed, frozen view."""

from __future__ import annotations

import re
from typing import Any

from salvage.errors import KnowledgeError
from salvage.knowledge import schema
from salvage.knowledge.hiv_model import (
    Gene,
    GenotypeReading,
    HivKnowledge,
    HivOptionRule,
    HivSetting,
    Interaction,
    Mutation,
    MutationEffect,
    PresumedActive,
    parse_mutation,
)


def mutation(token: str) -> Mutation:
    """'RT:M184VI' -> Mutation(gene RT, M, 184, {V, I})."""
    parsed = parse_mutation(token)
    if parsed is None:
        raise KnowledgeError(f"hiv.yaml: mutation token {token!r} is not GENE:<wt><pos><mutants>")
    return parsed


def _any_of(words: list[str]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)


def _setting(entry: schema.HivSettingEntry | None) -> HivSetting | None:
    return None if entry is None else _setting_of(entry)


def _setting_of(entry: schema.HivSettingEntry) -> HivSetting:
    return HivSetting(
        failing_classes_any=frozenset(entry.failing_classes_any),
        never_taken=frozenset(entry.never_taken),
        first_line=entry.first_line,
    )


def merge_evidence(raw: dict[str, Any]) -> None:
    """hiv.yaml carries its own references; they join evidence.yaml (no key defined twice)."""
    hiv: schema.HivFile = raw["hiv"]
    shared = raw["evidence"].evidence
    twice = sorted(set(shared) & set(hiv.evidence))
    if twice:
        raise KnowledgeError(f"hiv.yaml: evidence defined twice: {', '.join(twice)}")
    raw["evidence"] = schema.EvidenceFile(evidence={**shared, **hiv.evidence})


def problems(raw: dict[str, Any]) -> list[str]:
    """Every drug, evidence key, gene and verification source hiv.yaml names must exist."""
    hiv: schema.HivFile = raw["hiv"]
    drugs = raw["drugs"].drugs
    evidence = raw["evidence"].evidence
    sources = raw["manifest"].verification_sources
    found: list[str] = []
    keys = [
        *hiv.resistance.evidence,
        *hiv.regimens.multiclass.evidence,
        *hiv.hbv.evidence,
        *hiv.renal.evidence,
        *hiv.wording.prep_statement_evidence,
        *hiv.regimens.presumed_active.evidence,
        *hiv.adherence.evidence,
        *hiv.wording.prep_acquisition_evidence,
        *(k for o in hiv.regimens.options for k in o.evidence),
        *(k for i in hiv.interactions for k in i.evidence),
    ]
    found += [f"hiv.yaml: unknown evidence {k!r}" for k in keys if k not in evidence]
    classes = {c for d in drugs.values() for c in d.classes}
    settings = [
        *(o.recycled_backbone_when for o in hiv.regimens.options if o.recycled_backbone_when),
        *(v.when for o in hiv.regimens.options for v in o.rationale_variants),
    ]
    found += [
        f"hiv.yaml: unknown drug class {c!r} in a setting"
        for st in settings
        for c in (*st.failing_classes_any, *st.never_taken)
        if c not in classes
    ]
    named = [
        *(d for r in hiv.resistance.mutations for d in (*r.partial, *r.inactive)),
        *(d for r in hiv.resistance.combinations for d in (*r.partial, *r.inactive)),
        *(d for o in hiv.regimens.options for d in o.anchor),
        *hiv.regimens.companion_preference,
        *hiv.regimens.presumed_active.drugs,
        *hiv.wording.prep_drugs,
        *hiv.regimens.boosters,
        *hiv.regimens.boosters.values(),
        *hiv.hbv.tenofovir,
        *hiv.hbv.partners,
        hiv.renal.tdf,
        hiv.renal.taf,
        hiv.renal.partner,
        *(d for i in hiv.interactions for d in (*i.first, *i.second)),
    ]
    found += [f"hiv.yaml: unknown drug {d!r}" for d in dict.fromkeys(named) if d not in drugs]
    genes = set(hiv.genotype.genes)
    tokens = [
        *(r.token for r in hiv.resistance.mutations),
        *(t for r in hiv.resistance.combinations for t in r.of),
        *(r.requires for r in hiv.resistance.combinations if r.requires),
    ]
    for token in tokens:
        gene = token.split(":", 1)[0]
        if gene not in genes:
            found.append(f"hiv.yaml: mutation {token!r} names unknown gene {gene!r}")
    kinds = raw["observations"].observations
    kind = hiv.genotype.observation_kind
    if kind not in kinds:
        found.append(f"hiv.yaml: unknown observation kind {kind!r}")
    else:
        found += [
            f"hiv.yaml: genotype LOINC {c.code} missing from observations.yaml kind {kind}"
            for c in hiv.genotype.loinc
            if c.code not in kinds[kind].loinc
        ]
    found += [
        f"hiv.yaml: genotype LOINC {c.code} names unknown gene {g!r}"
        for c in hiv.genotype.loinc
        for g in c.genes
        if g not in genes
    ]
    verified = (
        [c.verified for c in hiv.genotype.loinc]
        + [c.verified for c in hiv.genotype.component_codes.values()]
        + [c.verified for codes in hiv.renal.dialysis_conditions.values() for c in codes]
    )
    found += [f"hiv.yaml: unknown verification source {v!r}" for v in verified if v not in sources]
    return found


def build_hiv(hiv: schema.HivFile) -> HivKnowledge:
    reading = hiv.genotype
    regimens = hiv.regimens
    return HivKnowledge(
        reading=GenotypeReading(
            observation_kind=reading.observation_kind,
            code_genes={c.code: frozenset(c.genes) for c in reading.loinc},
            amino_acid_codes=frozenset(reading.component_codes["amino_acid_change"].codes),
            gene_codes=frozenset(reading.component_codes["gene_studied"].codes),
            text_markers=tuple(m.lower() for m in reading.text_markers),
            hiv_markers=tuple(m.lower() for m in reading.hiv_markers),
            hiv_name=_any_of(reading.hiv_markers),
            genotype_name=_any_of(reading.text_markers),
            genes={
                name: Gene(
                    name=name,
                    aliases=tuple(a.lower() for a in g.names),
                    classes=frozenset(g.classes),
                )
                for name, g in reading.genes.items()
            },
            no_mutation_phrases=tuple(p.lower() for p in reading.no_mutation_phrases),
            not_sequenced_phrases=tuple(p.lower() for p in reading.not_sequenced_phrases),
            interpretation_phrases=tuple(
                (p.phrase.lower(), p.level) for p in reading.interpretation_phrases
            ),
            interpretation_codes=dict(reading.interpretation_codes),
            interpretation_system=reading.interpretation_system,
        ),
        effects=tuple(
            MutationEffect(
                of=(mutation(r.token),),
                min_count=1,
                requires=None,
                partial=frozenset(r.partial),
                inactive=frozenset(r.inactive),
            )
            for r in hiv.resistance.mutations
        )
        + tuple(
            MutationEffect(
                of=tuple(mutation(t) for t in c.of),
                min_count=c.min,
                requires=mutation(c.requires) if c.requires else None,
                partial=frozenset(c.partial),
                inactive=frozenset(c.inactive),
            )
            for c in hiv.resistance.combinations
        ),
        resistance_evidence=tuple(hiv.resistance.evidence),
        multiclass_classes=frozenset(regimens.multiclass.classes),
        multiclass_min=regimens.multiclass.min_classes,
        multiclass_evidence=tuple(regimens.multiclass.evidence),
        genotype_window_days=regimens.genotype_window_days_after_stop,
        integrase_classes=frozenset(regimens.integrase_classes),
        companion_preference=tuple(regimens.companion_preference),
        boosters=dict(regimens.boosters),
        booster_class=regimens.booster_class,
        options=tuple(
            HivOptionRule(
                id=o.id,
                kind=o.kind,
                rank=o.rank,
                label=o.label,
                label_integrase=o.label_integrase,
                anchor=tuple(o.anchor),
                nrti_backbone=o.nrti_backbone,
                min_fully_active=o.min_fully_active,
                recycled_backbone_when=_setting(o.recycled_backbone_when),
                recycled_backbone_note=" ".join((o.recycled_backbone_note or "").split()) or None,
                multidrug_resistance_agent=o.multidrug_resistance_agent,
                rationale=" ".join(o.rationale.split()),
                rationale_variants=tuple(
                    (_setting_of(v.when), " ".join(v.text.split())) for v in o.rationale_variants
                ),
                cautions=tuple(o.cautions),
                evidence=tuple(o.evidence),
            )
            for o in regimens.options
        ),
        presumed_active=PresumedActive(
            class_never_taken=regimens.presumed_active.class_never_taken,
            gene=regimens.presumed_active.gene,
            drugs=frozenset(regimens.presumed_active.drugs),
            label=regimens.presumed_active.label,
            evidence=tuple(regimens.presumed_active.evidence),
        ),
        adherence_phrases=tuple(p.lower() for p in hiv.adherence.note_phrases),
        cation_class=hiv.adherence.cation_class,
        cation_affected_classes=frozenset(hiv.adherence.affected_classes),
        adherence_evidence=tuple(hiv.adherence.evidence),
        disclaimer=" ".join(hiv.wording.disclaimer.split()),
        prep_statement=" ".join(hiv.wording.prep_statement.split()),
        prep_acquisition=" ".join(hiv.wording.prep_acquisition.split()),
        prep_acquisition_integrase=" ".join(hiv.wording.prep_acquisition_integrase.split()),
        prep_low_level_rna=" ".join(hiv.wording.prep_low_level_rna.split()),
        no_genotype_missing=" ".join(hiv.wording.no_genotype_missing.split()),
        no_active_drug_recheck=" ".join(hiv.wording.no_active_drug_recheck.split()),
        prep_drugs=frozenset(hiv.wording.prep_drugs),
        prep_statement_evidence=tuple(hiv.wording.prep_statement_evidence),
        prep_acquisition_evidence=tuple(hiv.wording.prep_acquisition_evidence),
        hbv_evidence=tuple(hiv.hbv.evidence),
        hbv_tenofovir=frozenset(hiv.hbv.tenofovir),
        hbv_partners=frozenset(hiv.hbv.partners),
        tdf=hiv.renal.tdf,
        taf=hiv.renal.taf,
        partner=hiv.renal.partner,
        dialysis_note=hiv.renal.dialysis_note,
        below_taf_advice=" ".join(hiv.renal.below_taf_advice.split()),
        tdf_min_clearance=hiv.renal.tdf_min_creatinine_clearance_ml_min,
        taf_min_clearance=hiv.renal.taf_min_creatinine_clearance_ml_min,
        dialysis_icd10cm=tuple(c.code for c in hiv.renal.dialysis_conditions.get("icd10cm", [])),
        dialysis_snomed=frozenset(c.code for c in hiv.renal.dialysis_conditions.get("snomed", [])),
        renal_evidence=tuple(hiv.renal.evidence),
        interactions=tuple(
            Interaction(
                id=i.id,
                first=frozenset(i.first),
                second=frozenset(i.second),
                text=" ".join(i.text.split()),
                evidence=tuple(i.evidence),
            )
            for i in hiv.interactions
        ),
    )
