"""HIV-1 drug-resistance results in FHIR R4 -> GenotypeResult records.

Laboratories send genotypes in several shapes; each is read here (codes and words in hiv.yaml):
- an Observation whose valueString (or value text) lists mutations, optionally by gene:
  "RT: M184V, K103N; PR: none; IN: not sequenced";
- an Observation with components: a gene-studied component followed by amino-acid-change
  components (Genomics Reporting style), or one component per gene or per drug;
- per-drug interpretations: an Observation (or component) whose code names a drug and whose value
  or interpretation is "susceptible", "low-level", "intermediate", "high-level" (or S/I/R);
- a DiagnosticReport grouping such Observations (result references), possibly with a conclusion
  that lists mutations.
A result that yields no gene, mutation or drug call is kept with the problem stated, so the
report can say the genotype could not be read.
"""

from __future__ import annotations

import re
from typing import Any

from salvage.engine.dates import optional_date, parse_fhir_date
from salvage.engine.drugs import DrugNormaliser, concept_text
from salvage.engine.model import GenotypeResult, PatientRecord
from salvage.knowledge.hiv_model import GenotypeReading
from salvage.knowledge.model import KnowledgeBase

# One amino-acid change as laboratories print it: M184V, M184V/I, M184MV (mixture with wild type),
# K103N, optionally prefixed by the gene (RT:M184V, RT_M184V).
_CHANGE = re.compile(r"\b(?:([A-Za-z0-9]+)[:_])?([A-Z])(\d{1,3})([A-Z](?:/[A-Z])*|[A-Z]{2,4})\b")
_GENE_LABEL = re.compile(r"^\s*([A-Za-z][A-Za-z0-9 ()-]{0,30}?)\s*[:=]\s*(.*)$", re.S)


def _texts(concept: Any) -> list[str]:
    if not isinstance(concept, dict):
        return []
    found = [str(concept.get("text") or "")]
    found += [
        str(c.get("display") or "") for c in concept.get("coding") or () if isinstance(c, dict)
    ]
    return [t for t in found if t]


def _codes(concept: Any) -> set[str]:
    if not isinstance(concept, dict):
        return set()
    return {
        str(c.get("code"))
        for c in concept.get("coding") or ()
        if isinstance(c, dict) and c.get("code")
    }


def is_genotype(resource: dict[str, Any], kb: KnowledgeBase) -> bool:
    """Whether an Observation or DiagnosticReport carries an HIV-1 drug-resistance result.
    Called for every Observation no other rule reads, so it does one pass over the code."""
    reading = kb.hiv.reading
    code = resource.get("code")
    names: list[str] = []
    if type(code) is dict:
        if code.get("text"):
            names.append(str(code["text"]))
        for coding in code.get("coding") or ():
            if type(coding) is dict:
                value = coding.get("code")
                if isinstance(value, str) and value in reading.code_genes:
                    return True
                if coding.get("display"):
                    names.append(str(coding["display"]))
    components = resource.get("component")
    if components and type(components) is list:
        component_codes = reading.amino_acid_codes | reading.gene_codes
        for component in components:
            if isinstance(component, dict) and _codes(component.get("code")) & component_codes:
                return True
    if not names:
        return False
    name = " ".join(names)
    return reading.hiv_name.search(name) is not None and (
        reading.genotype_name.search(name) is not None
    )


class GenotypeReader:
    """Reads genotype Observations and DiagnosticReports into a patient's record."""

    def __init__(self, kb: KnowledgeBase, drugs: DrugNormaliser) -> None:
        self.kb = kb
        self.reading: GenotypeReading = kb.hiv.reading
        self.drugs = drugs
        # position+wild type -> genes that have a rule there, to place a change given without gene
        self._rule_genes: dict[tuple[str, int], set[str]] = {}
        for effect in kb.hiv.effects:
            for m in effect.of:
                self._rule_genes.setdefault((m.wild_type, m.position), set()).add(m.gene)

    # -- entry points ------------------------------------------------------------------------
    def observation(self, r: dict[str, Any], source: str, record: PatientRecord) -> None:
        when = self._when(r, source)
        parts = _Parts()
        coded = set().union(
            *(self.reading.code_genes.get(c, frozenset()) for c in _codes(r.get("code")))
        )
        parts.default_genes = coded
        code_gene = next(iter(coded)) if len(coded) == 1 else self._gene_in(_texts(r.get("code")))
        code_drugs = self.drugs.from_concept(r.get("code"))
        for text in self._value_texts(r):
            if code_drugs and self._level(text):
                parts.calls += [(d, self._level(text) or "") for d in sorted(code_drugs)]
            else:
                self._read_text(text, code_gene, parts)
        level = self._interpretation(r.get("interpretation"))
        if code_drugs and level:
            parts.calls += [(d, level) for d in sorted(code_drugs)]
        gene_context = code_gene
        for component in r.get("component") or ():
            if not isinstance(component, dict):
                continue
            codes = _codes(component.get("code"))
            values = self._value_texts(component)
            if codes & self.reading.gene_codes:
                gene_context = self._gene_in(values) or gene_context
                if gene_context:
                    parts.genes.add(gene_context)
                continue
            comp_gene = self._gene_in(_texts(component.get("code")))
            comp_drugs = self.drugs.from_concept(component.get("code"))
            comp_level = self._interpretation(component.get("interpretation"))
            if comp_drugs:
                level = comp_level or next((self._level(v) for v in values if self._level(v)), None)
                if level:
                    parts.calls += [(d, level) for d in sorted(comp_drugs)]
                    continue
            for text in values:
                self._read_text(text, comp_gene or gene_context, parts)
        if code_gene and (parts.mutations or parts.none_genes or parts.calls):
            parts.genes.add(code_gene)
        if coded and parts.any():  # the code says which genes were sequenced
            parts.genes |= coded
        self._add(record, source, when, parts, ", ".join(_texts(r.get("code"))[:1]))

    def report(self, r: dict[str, Any], source: str, record: PatientRecord) -> None:
        when = self._when(r, source)
        members = tuple(
            "/".join(str(ref.get("reference")).rstrip("/").split("/")[-2:])
            for ref in r.get("result") or ()
            if isinstance(ref, dict) and isinstance(ref.get("reference"), str)
        )
        parts = _Parts()
        conclusion = r.get("conclusion")
        if isinstance(conclusion, str):
            self._read_text(conclusion, self._gene_in(_texts(r.get("code"))), parts)
        for concept in r.get("conclusionCode") or ():
            for text in _texts(concept):
                self._read_text(text, None, parts)
        if not members and not parts.any():
            parts.problems.append("a resistance report with no results and no readable conclusion")
        self._add(record, source, when, parts, ", ".join(_texts(r.get("code"))[:1]), members)

    # -- reading -----------------------------------------------------------------------------
    def _when(self, r: dict[str, Any], source: str) -> Any:
        for name in ("effectiveDateTime", "effectiveInstant", "issued"):
            if r.get(name) is not None:
                return parse_fhir_date(r[name], field_name=name, source=source)
        period = r.get("effectivePeriod")
        if isinstance(period, dict):
            return optional_date(period.get("start"), field_name="effectivePeriod", source=source)
        return None

    def _value_texts(self, r: dict[str, Any]) -> list[str]:
        if isinstance(r.get("valueString"), str):
            return [r["valueString"]]
        if isinstance(r.get("valueCodeableConcept"), dict):
            return _texts(r["valueCodeableConcept"])[:1] or [
                concept_text(r["valueCodeableConcept"])
            ]
        return []

    def _gene_in(self, texts: list[str]) -> str | None:
        for text in texts:
            gene = self.reading.gene_named(text)
            if gene:
                return gene
        return None

    def _level(self, text: str) -> str | None:
        lowered = text.lower()
        for phrase, level in self.reading.interpretation_phrases:
            if phrase in lowered:
                return level
        return None

    def _interpretation(self, interpretations: Any) -> str | None:
        for concept in interpretations or ():
            if not isinstance(concept, dict):
                continue
            for coding in concept.get("coding") or ():
                if (
                    isinstance(coding, dict)
                    and coding.get("system") == self.reading.interpretation_system
                    and str(coding.get("code")) in self.reading.interpretation_codes
                ):
                    return self.reading.interpretation_codes[str(coding["code"])]
            for text in _texts(concept):
                if self._level(text):
                    return self._level(text)
        return None

    def _segments(self, text: str) -> list[str]:
        """Segments of a report, one per gene: split at ";", "|" and line ends, and at a sentence
        end followed by a gene label ("RT: K103N, M184V. PR: no major mutations")."""
        segments: list[str] = []
        for piece in re.split(r"[;\n|]+", text):
            sentences = re.split(r"(?<=\.)\s+", piece)
            segments.append(sentences[0])
            for sentence in sentences[1:]:
                label = _GENE_LABEL.match(sentence)
                if label and self.reading.gene_named(label.group(1)):
                    segments.append(sentence)
                else:
                    segments[-1] += " " + sentence
        return segments

    def _read_text(self, text: str, gene: str | None, parts: _Parts) -> None:
        """Mutations in free text, segment by segment ("RT: M184V, K103N; PR: none")."""
        for segment in self._segments(text):
            if not segment.strip():
                continue
            segment_gene = gene
            body = segment
            label = _GENE_LABEL.match(segment)
            if label and self.reading.gene_named(label.group(1)):
                segment_gene = self.reading.gene_named(label.group(1))
                body = label.group(2)
            lowered = body.strip().lower().rstrip(".")
            if segment_gene and any(
                lowered == p or lowered.startswith(p) for p in self.reading.not_sequenced_phrases
            ):
                parts.not_sequenced.add(segment_gene)  # named, not assessed: stays unknown
                continue
            none_found = any(
                lowered == p or lowered.startswith(p) for p in self.reading.no_mutation_phrases
            )
            if none_found and (segment_gene or parts.default_genes):
                parts.none_genes |= {segment_gene} if segment_gene else parts.default_genes
                continue
            found = False
            for match in _CHANGE.finditer(body):
                prefix, wild_type, position, mutant = match.groups()
                where = (self.reading.gene_named(prefix) if prefix else None) or segment_gene
                if where is None:
                    candidates = self._rule_genes.get((wild_type, int(position)), set())
                    where = next(iter(candidates)) if len(candidates) == 1 else None
                if where is None:
                    parts.problems.append(f"gene of {match.group(0)} not stated")
                    continue
                letters = {c for c in mutant if c.isalpha() and c != wild_type}
                for letter in sorted(letters):
                    parts.mutations.add(f"{where}:{wild_type}{position}{letter}")
                parts.genes.add(where)
                found = True
            if not found and segment_gene and not self._level(body):
                parts.problems.append(f"{segment.strip()!r} not read")

    def _add(
        self,
        record: PatientRecord,
        source: str,
        when: Any,
        parts: _Parts,
        text: str,
        members: tuple[str, ...] = (),
    ) -> None:
        # a gene the report says was not assessed is unknown, even when the code names it
        genes = frozenset((parts.genes | parts.none_genes) - parts.not_sequenced)
        problem = "; ".join(dict.fromkeys(parts.problems)) or None
        if not parts.any() and not members and problem is None:
            problem = (
                f"{', '.join(sorted(parts.not_sequenced))} not assessed"
                if parts.not_sequenced
                else "no mutation list, gene or per-drug interpretation could be read"
            )
        record.genotypes.append(
            GenotypeResult(
                source=source,
                when=when,
                genes=genes,
                mutations=frozenset(parts.mutations),
                drug_calls=tuple(dict.fromkeys(parts.calls)),
                members=members,
                problem=problem,
                text=text,
            )
        )


class _Parts:
    """What one resource yielded while it is being read."""

    def __init__(self) -> None:
        self.genes: set[str] = set()
        self.default_genes: set[str] = set()  # genes the Observation's code names
        self.none_genes: set[str] = set()
        self.not_sequenced: set[str] = set()  # genes named as not assessed ("IN: not sequenced")
        self.mutations: set[str] = set()
        self.calls: list[tuple[str, str]] = []
        self.problems: list[str] = []

    def any(self) -> bool:
        return bool(self.genes or self.none_genes or self.mutations or self.calls)
