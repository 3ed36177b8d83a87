"""Schema of the knowledge files, as pydantic models: a file that does not fit is refused."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CodeEntry(_Strict):
    code: str = Field(pattern=r"^\d+$")
    tty: Literal["IN", "PIN", "MIN", "SCD", "SCDC", "SBD", "BN", "SBDC", "GPCK", "BPCK"]
    verified: str


class DrugEntry(_Strict):
    role: Literal["anticancer", "antiretroviral", "supportive", "steroid", "other"]
    classes: list[str]
    continuous: bool = False
    synonyms: list[str] = []
    rxnorm: list[CodeEntry] = []
    anthracycline_equivalence: float | None = Field(default=None, gt=0)
    # The evidence key the ratio comes from, or "assumed" when no published ratio covers the
    # agent (then patient_rules.yaml anthracycline.assumed_equivalence_note says how it counts).
    anthracycline_equivalence_basis: str | None = None


class FormulationRule(_Strict):
    """A drug whose name is qualified in the record ("doxorubicin ... liposomal") is another agent:
    when one of `words` stands as a whole word in the medication's text, `drug` becomes `becomes`
    (even when a code named the plain ingredient, as RxNorm does for liposomal products)."""

    drug: str
    words: list[str] = Field(min_length=1)
    becomes: str


class ProductEntry(_Strict):
    name: str
    synonyms: list[str] = []
    ingredients: list[str] = Field(min_length=2)
    rxnorm: list[CodeEntry] = []


class DrugsFile(_Strict):
    drugs: dict[str, DrugEntry]
    products: list[ProductEntry] = []
    formulations: list[FormulationRule] = []

    @field_validator("drugs")
    @classmethod
    def _names_are_lower_case(cls, value: dict[str, DrugEntry]) -> dict[str, DrugEntry]:
        for name in value:
            if name != name.lower():
                raise ValueError(f"drug name {name!r} must be lower case (RxNorm ingredient name)")
        return value


class RegimenEntry(_Strict):
    components: list[str] = Field(min_length=1)
    setting: Literal[
        "first-line", "salvage", "maintenance", "consolidation", "local-salvage-procedure", "any"
    ]
    diseases: list[str]
    cycle_days: int | None = Field(default=None, ge=1, le=120)


class RegimensFile(_Strict):
    regimens: dict[str, RegimenEntry]


class DiseaseEntry(_Strict):
    name: str
    snomed: list[str]
    icd10cm: list[str]
    domain: Literal["oncology", "hiv"]
    drug_classes: list[str] = []
    # Whole phrases (regular expressions, case-insensitive, matched on word boundaries) that name
    # the disease in a Condition's text; read only when the Condition has no SNOMED CT or
    # ICD-10-CM coding, and never with a text_recognition.never_with word.
    text_patterns: list[str] = []


class DiseaseTextEntry(_Strict):
    # Words and phrases that keep a Condition's text from naming a disease: negation,
    # uncertainty, another person's disease, a past one.
    never_with: list[str] = Field(min_length=1)
    label: str  # said with every disease recognised this way ("recognised from text, not coded")
    ask: str  # what the clinician should do about it


class CodeSet(_Strict):
    snomed: list[str] = []
    icd10cm: list[str] = []


class HivStatusEntry(_Strict):
    prep_context: CodeSet
    evidence: list[str] = Field(min_length=1)


class DiseasesFile(_Strict):
    diseases: dict[str, DiseaseEntry]
    hiv_status: HivStatusEntry
    text_recognition: DiseaseTextEntry | None = None


class MaintenanceEntry(_Strict):
    name: str
    after_classes: list[str]
    drugs: list[str]  # continuation maintenance: kept from the induction regimen
    switch_drugs: list[str] = []  # switch maintenance: listed agents not part of induction
    # Induction is complete only after this many treatment days (cycles) of the induction regimen
    min_induction_cycles: int = Field(default=1, ge=1, le=12)
    evidence: list[str] = []


class AccompanyingEntry(_Strict):
    """Drugs that belong to the line they accompany (CNS prophylaxis, steroid pre-phase)."""

    name: str
    role: Literal["cns-prophylaxis", "pre-phase"]
    drugs: list[str] = Field(min_length=1)
    with_regimens: list[str] = Field(min_length=1)  # named regimens they accompany
    before_days: int = Field(default=0, ge=0, le=60)  # may start this long before the line
    after_days: int = Field(default=0, ge=0, le=120)  # or this long after its last dose
    evidence: list[str] = Field(min_length=1)


class ConsolidationEntry(_Strict):
    """High-dose therapy with a stem-cell transplant consolidates the line that preceded it."""

    name: str
    procedure: str  # procedure kind (procedures.yaml)
    conditioning: list[str] = Field(min_length=1)  # drugs given before the transplant
    conditioning_days: int = Field(ge=1, le=60)  # conditioning starts within this before it
    after_line_days: int = Field(ge=1, le=365)  # transplant within this of the line's last dose
    post_transplant: list[str] = []  # consolidation/maintenance after it (AETHERA)
    post_transplant_days: int = Field(default=0, ge=0, le=365)  # started within this after
    evidence: list[str] = Field(min_length=1)


class SequenceEntry(_Strict):
    """A planned sequential regimen (AC followed by a taxane) is one line, not two."""

    name: str
    first: list[str] = Field(min_length=1)  # drugs of the first part
    then: list[str] = Field(min_length=1)  # any of these may follow
    max_gap_days: int = Field(ge=1, le=120)  # after the first part's last dose
    evidence: list[str] = Field(min_length=1)


class LineRulesEntry(_Strict):
    regimen_window_days: int | None = Field(default=None, ge=1, le=365)
    gap_days: int | None = Field(default=None, ge=1, le=3650)
    substitutions: list[list[str]] | None = None
    maintenance: list[MaintenanceEntry] | None = None
    procedure_lines: bool | None = None
    min_regimen_days: int | None = Field(default=None, ge=0, le=365)
    default_supply_days: int | None = Field(default=None, ge=1, le=365)
    accompanying: list[AccompanyingEntry] | None = None
    consolidation: list[ConsolidationEntry] | None = None
    sequences: list[SequenceEntry] | None = None
    evidence: list[str] | None = None


class IntentCodes(_Strict):
    extension_urls: list[str] = Field(min_length=1)  # mCODE procedure/treatment intent
    codes: dict[Literal["adjuvant", "neoadjuvant", "curative", "palliative"], list[str]]
    verified: str


class IntentRules(_Strict):
    """Treatment intent: as recorded, else from the disease state when the line began."""

    recorded: IntentCodes
    diseases: list[str]  # diseases where (neo)adjuvant therapy of early disease exists
    # The intent inferred from an early stage, per disease (default adjuvant).
    inferred: dict[str, Literal["adjuvant", "curative"]] = {}
    early_stages: list[str] = Field(min_length=1)  # stage groups (roman or arabic, no suffix)
    advanced_stages: list[str] = Field(min_length=1)
    metastatic_snomed: list[str] = []
    metastatic_icd10cm: list[str] = []  # prefixes
    metastatic_text: list[str] = []
    # Endocrine therapy begun within this many days of an adjuvant line is adjuvant endocrine
    # therapy when no advanced disease is on record by then.
    follow_on_classes: list[str] = []
    follow_on_days: int = Field(default=0, ge=0, le=730)
    evidence: list[str] = Field(min_length=1)


class ResponseRules(_Strict):
    """Best response to a line, read from disease-status observations (codes, then words)."""

    codes: dict[Literal["complete", "partial", "stable", "progression"], list[str]]
    text: dict[Literal["complete", "partial", "stable", "progression"], list[str]]
    # Read up to this many days after the line's last dose (response assessment after therapy).
    assess_within_days: int = Field(ge=1, le=365)
    chemosensitive: list[Literal["complete", "partial"]]
    # After salvage chemotherapy (setting 'salvage') in these diseases, the response decides
    # what comes next (CORAL, PARMA; ZUMA-7).
    salvage_diseases: list[str] = []
    sensitive_next: str = ""
    evidence: list[str] = Field(min_length=1)


class LineRulesFile(_Strict):
    default: LineRulesEntry
    diseases: dict[str, LineRulesEntry] = {}
    intent: IntentRules | None = None
    response: ResponseRules | None = None


class EvidenceEntry(_Strict):
    label: str
    citation: str
    year: int | None = None
    pmid: str | None = Field(default=None, pattern=r"^\d+$")
    doi: str | None = Field(default=None, pattern=r"^10\.\d{4,9}/\S+$")
    url: str = Field(pattern=r"^https://")
    # Evidence level, one of option_context.yaml evidence_levels (a knowledge test checks it).
    level: str | None = None
    # Where the DOI/PMID (or title and year) was checked, and when.
    verified: str | None = None
    # Why a source has neither DOI nor PMID (a guideline, label or standard published on the web
    # only); without it a knowledge test requires a DOI or PMID.
    no_identifier: str | None = None


class EvidenceFile(_Strict):
    evidence: dict[str, EvidenceEntry]


class ManifestFile(_Strict):
    kb_version: str = Field(pattern=r"^\d{4}\.\d+\.\d+$")
    disclaimer: str
    verification_sources: dict[str, str]


class ObservationEntry(_Strict):
    loinc: list[str]
    unit: str | None
    convert: dict[str, float | Literal["log10"]]
    unitless: bool = False
    answers: dict[str, float] = {}
    not_detected: list[str] = []
    detected_below: list[str] = []
    text_answers: bool = False
    # LOINC code -> manifest verification source, for codes checked with the search tool
    verified: dict[str, str] = {}


class ScorePattern(_Strict):
    scale: str  # the observation kind the label names, or "own": the observation's own kind
    pattern: str


class PerformanceText(_Strict):
    names: dict[str, list[str]]
    ambiguous: list[str]
    values: list[ScorePattern] = Field(min_length=1)
    range: dict[str, tuple[int, int]]


class ObservationsFile(_Strict):
    observations: dict[str, ObservationEntry]
    performance_text: PerformanceText


class ProcedureCode(_Strict):
    system: str
    code: str
    verified: str


class ProcedureEntry(_Strict):
    label: str
    codes: list[ProcedureCode]
    text: list[str]


class ProceduresFile(_Strict):
    procedures: dict[str, ProcedureEntry]


class DiseaseStatusRule(_Strict):
    worsened: list[str] = Field(min_length=1)  # SNOMED answers of LOINC 97509-4
    improved: list[str] = Field(min_length=1)
    evidence: list[str] = Field(min_length=1)


class PrimaryRefractoryRule(_Strict):
    diseases: list[str] = Field(min_length=1)
    days_after_first_line: int = Field(ge=0, le=365)
    # best responses after which a progression is refractory disease, of any line (SCHOLAR-1)
    no_response: list[Literal["stable", "progression"]] = []
    evidence: list[str] = Field(min_length=1)


class StopReasonCodes(_Strict):
    no_response: list[str] = Field(min_length=1)
    not_tolerated: list[str] = Field(min_length=1)


class OncologyFailureRules(_Strict):
    disease_status: DiseaseStatusRule
    condition_clinical_status: list[str] = Field(min_length=1)
    relapse_text_cues: list[str] = Field(min_length=1)
    remission_clinical_status: list[str] = Field(min_length=1)
    counted_verification_status: list[str] = Field(min_length=1)
    default_cycle_days: int = Field(ge=1, le=365)
    primary_refractory: PrimaryRefractoryRule
    stop_reasons: StopReasonCodes
    early_relapse_months: float = Field(gt=0, le=120)
    evidence: list[str] = Field(min_length=1)


class PostProstatectomyRule(_Strict):
    threshold_ng_per_ml: float = Field(gt=0)
    confirmations: int = Field(ge=1, le=5)  # consecutive values at or above the threshold
    evidence: list[str] = Field(min_length=1)


class PostRadiotherapyRule(_Strict):
    nadir_plus_ng_per_ml: float = Field(gt=0)
    evidence: list[str] = Field(min_length=1)


class ProstateFailureRules(_Strict):
    post_prostatectomy: PostProstatectomyRule
    post_radiotherapy: PostRadiotherapyRule


class HivFailureRules(_Strict):
    threshold_copies_per_ml: float = Field(gt=0)
    min_weeks_on_regimen: int = Field(ge=0, le=104)
    evidence: list[str] = Field(min_length=1)


class FailuresFile(_Strict):
    oncology: OncologyFailureRules
    prostate: ProstateFailureRules
    hiv: HivFailureRules


class OptionWhen(_Strict):
    failure: list[
        Literal[
            "refractory", "relapse", "intolerance", "biochemical-recurrence", "virologic-failure"
        ]
    ]
    timing: Literal["early", "late", "any"] = "any"
    transplant: Literal["eligible", "ineligible", "any"] = "any"
    after_procedure: list[str] = []
    # The option answers only a failure after one of these drug classes (a re-biopsy at
    # progression on osimertinib); without them it does not apply and is not listed as ruled out.
    after_classes: list[str] = []
    min_failed_lines: int = Field(default=0, ge=0)
    min_line: int = Field(default=0, ge=0)  # the failed line's number is at least this
    # The failed line's number is at most this: ZUMA-7, TRANSFORM and CORAL enrolled patients
    # after one line only, so their rationale does not describe a third-line patient.
    max_line: int | None = Field(default=None, ge=1)
    # Offered only when every drug named here cannot be used: contraindicated, not tolerated, or
    # renal function needing a re-check or unknown (R-DHAX as the cisplatin-sparing alternative).
    alternative_to: list[str] = []
    hormone_receptor: Literal["positive", "negative", "any"] = "any"
    her2: Literal["positive", "negative", "any"] = "any"
    primary_refractory: bool | None = None  # False: not for primary refractory disease
    # The highest ECOG the trial behind the option enrolled: a current worse ECOG excludes it,
    # unless ecog_beyond_trial is caution (patient_rules.yaml performance_status.beyond_trial).
    max_ecog: int | None = Field(default=None, ge=0, le=4)
    ecog_beyond_trial: Literal["exclude", "caution"] = "exclude"
    # Exclusive drug classes (class_rules.yaml) this option may follow, with its own evidence.
    after_class_failure: list[str] = []
    # Drug classes the trial population had all received before (EMBRACE: an anthracycline and a
    # taxane; DESTINY-Breast03: anti-HER2 therapy and a taxane): without them the option is
    # excluded, since its evidence does not describe this patient.
    prior_classes: list[str] = []
    # Drug classes whose earlier receipt (any line of this disease, whatever its outcome) puts the
    # patient outside the trial behind the option (AETHERA: brentuximab-naive; immunotherapy for
    # checkpoint-inhibitor-naive patients; MONARCH 2 for CDK4/6-inhibitor-naive ones).
    not_after_classes: list[str] = []
    # Re-challenge: an exclusive class (class_rules.yaml) that failed may be given again when the
    # failure came at least this many months after its line ended (a long disease-free interval,
    # e.g. a taxane 12 months after adjuvant paclitaxel). The option answers only such failures,
    # so a shorter interval leaves the class exclusion of the first-time option as the reason.
    rechallenge_after_months: dict[str, float] = {}
    # At least one of these classes received before (TROPION-Breast01: earlier chemotherapy of any
    # kind, named by the cytotoxic classes).
    prior_any_classes: list[str] = []
    # Tumour biomarkers (biomarkers.yaml ids) and the results the trial enrolled: a known other
    # result excludes the option; an unknown one shows it as a labelled branch or a testing prompt.
    biomarkers: dict[str, list[str]] = {}
    # The option answers only while nothing about any of these biomarkers (biomarkers.yaml ids)
    # is on record: broad molecular testing as the first step for an untested NSCLC. Once any
    # result, or a pending or failed test, is on record it does not apply and is not listed as
    # ruled out.
    biomarkers_unknown: list[str] = []
    # The option does not apply after these drug classes, because another option answers that
    # failure (after osimertinib the re-biopsy option does); not listed as ruled out.
    unless_after_classes: list[str] = []


class PsaRank(_Strict):
    above_ng_per_ml: float = Field(gt=0)
    rank: int = Field(ge=1)
    reason: str


Intent = Literal[
    "curative", "palliative", "supportive", "diagnostic", "investigational", "disease-control"
]


class BiomarkerCaution(_Strict):
    """A caution that holds only for some results of a biomarker (biomarkers.yaml id)."""

    biomarker: str
    results: list[str] = Field(min_length=1)  # detected | not-detected | unknown | a level
    text: str


class OptionEntry(_Strict):
    id: str = Field(pattern=r"^[a-z0-9-]+$")
    kind: Literal["regimen", "procedure", "test", "care", "trial"]
    regimen: str | None = None
    label: str | None = None
    procedure: str | None = None  # for procedure options: the procedure kind it delivers
    rank: int = Field(ge=1)
    # Rank by the PSA at recurrence (ng/mL): the first row whose threshold the PSA exceeds sets
    # the rank (RTOG 9601 secondary analysis, Dess 2020); otherwise `rank`.
    psa_ranks: list[PsaRank] = []
    # Shown as the option's setting when it is neither a named regimen nor a local procedure
    # (an allogeneic transplant referral, consolidation after autologous transplant).
    setting: str | None = None
    when: OptionWhen
    rationale: str
    cautions: list[str] = []
    # Cautions shown only while the biomarker has one of the results named (a retest prompt
    # that would contradict a detected mutation is shown only while the result is unknown).
    biomarker_cautions: list[BiomarkerCaution] = []
    evidence: list[str] = Field(min_length=1)
    # The goal of the option when it differs from the disease's default (option_context.yaml).
    intent: Intent | None = None
    # A step given after a responding salvage regimen (high-dose therapy with autologous
    # transplant), not an alternative to it: shown after the options with this sentence.
    follows_salvage: str | None = None


class DiseasePathway(_Strict):
    backbone_drugs: list[str] = []
    backbone_reason: str | None = None
    # Why each backbone drug may be given again (one reason per drug, so an option names only the
    # reasons of the drugs it reuses); backbone_reason serves drugs without their own.
    backbone_reasons: dict[str, str] = {}
    options: list[OptionEntry]


class PathwaysFile(_Strict):
    pathways: dict[str, DiseasePathway]


class DiseaseIntent(_Strict):
    """The goal of a disease's salvage options: a default, per transplant branch of the option
    (lymphoma salvage towards transplant is curative in intent), and per option id."""

    default: Intent
    by_branch: dict[Literal["eligible", "ineligible"], Intent] = {}
    # For options open to both branches: the patient's own candidacy decides (unknown: both named).
    any_branch_follows_patient: bool = False
    options: dict[str, Intent] = {}
    evidence: list[str] = Field(min_length=1)


class UniversalOption(_Strict):
    """An option every oncology pathway ends with; its id is prefixed with the disease."""

    option: OptionEntry
    diseases: list[str] = Field(min_length=1)


class GoalsOfCareRule(_Strict):
    after_failed_lines: int = Field(ge=1, le=10)  # distinct failed lines of the disease
    # Failures after which the prompt may appear (not a PSA-only recurrence, not intolerance).
    failure_kinds: list[Literal["refractory", "relapse", "intolerance", "biochemical-recurrence"]]
    text: str
    evidence: list[str] = Field(min_length=1)


class OptionContextFile(_Strict):
    evidence_levels: list[str] = Field(min_length=1)  # strongest first
    intent_labels: dict[Intent, str]
    intent_by_kind: dict[str, Intent] = {}
    intents: dict[str, DiseaseIntent]
    universal_options: list[UniversalOption] = []
    goals_of_care: GoalsOfCareRule


class NotCandidateWhen(_Strict):
    age_at_least: int | None = None
    ecog_at_least: int | None = None
    creatinine_clearance_below: float | None = None
    lvef_below: float | None = None
    ast_alt_above_uln_times: float | None = None


class CandidateWhen(_Strict):
    age_at_most: int
    ecog_at_most: int


class AgeDecision(_Strict):
    """From this age (up to candidate_when.age_at_most) age alone neither includes nor excludes:
    candidacy is unknown and both branches are shown, with the reason and its sources."""

    from_age: int
    reason: str
    evidence: list[str] = Field(min_length=1)


class TransplantRule(_Strict):
    not_candidate_when: NotCandidateWhen
    candidate_when: CandidateWhen
    age_is_a_decision: AgeDecision | None = None
    evidence: list[str] = Field(min_length=1)


class SequencingRule(_Strict):
    """A caution on an option from what came before it (or may come after it): bendamustine before
    CAR-T apheresis, CD19-directed therapy before CD19 CAR-T."""

    id: str = Field(pattern=r"^[a-z0-9-]+$")
    option_classes: list[str] = []  # the option contains a drug of one of these classes
    option_drugs: list[str] = []  # ... or one of these drugs
    prior_drugs: list[str] = []  # the patient received one of these drugs before
    prior_classes: list[str] = []  # ... or a drug of one of these classes
    # The caution applies only while the patient has not received these classes (a therapy that
    # may still be needed later, such as CAR-T).
    not_received_classes: list[str] = []
    caution: str
    evidence: list[str] = Field(min_length=1)


class Substitution(_Strict):
    """Intolerance of one drug of a regimen: the regimen with the drug replaced (or omitted), when
    that is a named regimen and a source supports it."""

    disease: str
    not_tolerated: str  # drug (drugs.yaml)
    substitute: str | None = None  # drug that replaces it; None = the regimen without it
    reason: str
    cautions: list[str] = []
    evidence: list[str] = Field(min_length=1)


class ClassRulesFile(_Strict):
    exclusive_after_failure: dict[str, str]  # drug class -> its name in explanations
    class_labels: dict[str, str] = {}  # other classes' names in explanations
    sequencing: list[SequencingRule] = []
    substitutions: list[Substitution] = []


class KarnofskyRow(_Strict):
    karnofsky_at_least: int = Field(ge=0, le=100)
    ecog: int = Field(ge=0, le=5)


class BeyondTrialEcog(_Strict):
    # Options marked when.ecog_beyond_trial: caution stay offered, with this caution, for a current
    # ECOG above their trial's limit up to this value (a targeted agent for a driver alteration).
    up_to_ecog: int = Field(ge=1, le=4)
    caution: str = Field(min_length=1)
    evidence: list[str] = Field(min_length=1)


class PerformanceStatusRules(_Strict):
    karnofsky_to_ecog: list[KarnofskyRow] = Field(min_length=1)
    beyond_trial: BeyondTrialEcog | None = None
    # From this ECOG, supportive and palliative care leads the options and every anticancer option
    # carries a caution: the trials behind them enrolled patients with ECOG 0-2.
    supportive_care_first_at_ecog: int = Field(ge=2, le=4)
    supportive_care_evidence: list[str] = Field(min_length=1)
    # Shown as the palliative-care option's rank reason only when it leads (current poor ECOG).
    supportive_care_first_reason: str
    evidence: list[str] = Field(min_length=1)


class CisplatinRule(_Strict):
    drug: str  # the drug the rule is about (a drugs.yaml name)
    min_creatinine_clearance_ml_min: float = Field(gt=0)
    max_ecog: int = Field(ge=0, le=4)
    evidence: list[str] = Field(min_length=1)


class BodySurfaceAreaRule(_Strict):
    formula: Literal["mosteller"]  # sqrt(height cm x weight kg / 3600)
    evidence: list[str] = Field(min_length=1)
    # The height and weight nearest in time to the dose are used; a weight further than this from
    # the dose does not convert it (the total becomes "at least").
    weight_within_days: int = Field(ge=1)


class AnthracyclineRule(_Strict):
    reference_drug: str  # doses are summed as equivalents of this drug (anthracycline_equivalence)
    max_cumulative_doxorubicin_mg_m2: float = Field(gt=0)
    caution_cumulative_doxorubicin_mg_m2: float = Field(gt=0)
    evidence: list[str] = Field(min_length=1)
    equivalence_evidence: list[str] = Field(default=[], min_length=0)
    assumed_equivalence_note: str = ""
    body_surface_area: BodySurfaceAreaRule | None = None
    # Dose units read: per-area units (mg/m2) and mass units (converted with the BSA), each with
    # its factor to mg/m2 or mg.
    per_area_units_mg_m2: dict[str, float] = {}
    mass_units_mg: dict[str, float] = {}


class RenalLimit(_Strict):
    drug: str
    min_creatinine_clearance_ml_min: float = Field(gt=0)
    dialysis_exempt: bool = False  # the label allows the drug on chronic haemodialysis


class HbvConditionCodes(_Strict):
    snomed: list[str]
    icd10cm: list[str]


class AntiretroviralRules(_Strict):
    renal_limits: list[RenalLimit]
    hla_b5701_excludes: list[str]
    hbv_active_drugs: list[str] = Field(min_length=1)
    hbv_conditions: HbvConditionCodes
    evidence: list[str] = Field(min_length=1)


class RecencyWindows(_Strict):
    ecog_days: int = Field(ge=1)
    renal_days: int = Field(ge=1)
    weight_days: int = Field(ge=1)
    organ_days: int = Field(ge=1)
    # A stale value meeting a 'not a transplant candidate' criterion within this many days still
    # leans the unknown candidacy against transplant (that branch is shown first).
    leaning_days: int = Field(default=365, ge=1)


class RenalCaution(_Strict):
    """A drug given with care (dose or label check), not avoided, below a clearance."""

    drug: str
    below_creatinine_clearance_ml_min: float = Field(gt=0)
    caution: str
    evidence: list[str] = Field(min_length=1)


class PatientRulesFile(_Strict):
    transplant_eligibility: dict[str, TransplantRule]
    cisplatin: CisplatinRule
    renal_cautions: list[RenalCaution] = []
    anthracycline: AnthracyclineRule
    antiretroviral: AntiretroviralRules
    performance_status: PerformanceStatusRules
    recency: RecencyWindows


class AnswerCode(_Strict):
    system: Literal["http://snomed.info/sct", "http://loinc.org"]
    code: str
    verified: str


class AnswerEntry(_Strict):
    codes: list[AnswerCode]
    text: list[str]


class ReceptorText(_Strict):
    """ER/PR results written as text with a label and the share of stained nuclei."""

    label: str  # regular expression: the receptor named before the result ("ER", "PgR:")
    percent: str  # regular expression with groups `below` (a "<") and `pct` (the number)
    ambiguous: str = ""  # regular expression: a range or hedge ("0-5%", "~1%"): left unknown
    positive_from_percent: float = Field(gt=0)
    evidence: list[str] = Field(min_length=1)


class AnswersFile(_Strict):
    positive: AnswerEntry
    negative: AnswerEntry
    receptor_text: ReceptorText | None = None


class MarkerEntry(_Strict):
    label: str
    diseases: list[str] = Field(min_length=1)
    log_scale: bool = False
    floor: float | None = Field(default=None, gt=0)


class ChartsFile(_Strict):
    markers: dict[str, MarkerEntry]


class CellularTherapyWait(_Strict):
    """A longer wait before the reminder when a fitting option is a referral therapy whose
    product is manufactured for the patient (CAR-T): referral, apheresis, manufacturing and
    bridging take weeks, and no new line may be recorded meanwhile."""

    classes: list[str] = Field(min_length=1)  # drug classes (drugs.yaml) of such therapies
    days: int = Field(ge=1, le=365)
    evidence: list[str] = Field(min_length=1)


class DelayEntry(_Strict):
    default_days: int = Field(ge=1, le=3650)
    stale_failure_days: int = Field(default=365, ge=30, le=7300)
    # Placeholders: {failure} (its kind and line), {date}, {age}
    stale_failure_text: str = Field(pattern=r"\{age\}")
    days_by_disease: dict[str, int] = {}
    evidence: list[str] = Field(min_length=1)
    cellular_therapy: CellularTherapyWait | None = None


class SingleActiveDrugEntry(_Strict):
    min_new_active_drugs: int = Field(ge=2, le=5)
    evidence: list[str] = Field(min_length=1)


class OrderChecksFile(_Strict):
    delay: DelayEntry
    single_active_drug: SingleActiveDrugEntry
    companion_drugs: list[str] = []
    referrals: dict[str, str] = {}  # drug class -> the referral a suggestion proposes


class OverlayDelay(_Strict):
    default_days: int | None = Field(default=None, ge=1, le=3650)
    days_by_disease: dict[str, int] = {}
    cellular_therapy_days: int | None = Field(default=None, ge=1, le=365)  # CAR-T referral wait
    stale_failure_days: int | None = Field(default=None, ge=30, le=7300)


class OverlayFile(_Strict):
    """An institution's local pathway overlay: add, disable or re-rank options."""

    institution: str
    add: dict[str, list[OptionEntry]] = {}
    disable: list[str] = []
    rerank: dict[str, int] = {}
    delay: OverlayDelay | None = None


# --- hiv.yaml: genotype reading, susceptibility rules, HIV options, HBV/renal, interactions -------
Level = Literal["active", "partial", "inactive"]
MUTATION_TOKEN = r"^[A-Za-z0-9]+:[A-Z]\d+[A-Z]+$"  # noqa: S105 (a pattern, not a secret)


class VerifiedCodes(_Strict):
    codes: list[str] = Field(min_length=1)
    verified: str


class GeneEntry(_Strict):
    names: list[str] = Field(min_length=1)
    classes: list[str]


class InterpretationPhrase(_Strict):
    phrase: str
    level: Level


class GenotypeLoinc(_Strict):
    code: str = Field(pattern=r"^\d+-\d$")
    genes: list[str] = Field(min_length=1)
    verified: str


class GenotypeReading(_Strict):
    observation_kind: str
    loinc: list[GenotypeLoinc] = []
    component_codes: dict[Literal["amino_acid_change", "gene_studied"], VerifiedCodes]
    text_markers: list[str] = Field(min_length=1)
    hiv_markers: list[str] = Field(min_length=1)
    genes: dict[str, GeneEntry]
    no_mutation_phrases: list[str]
    # a gene region named but not assessed (its drugs stay unknown, never taken as susceptible)
    not_sequenced_phrases: list[str] = []
    interpretation_phrases: list[InterpretationPhrase] = Field(min_length=1)
    interpretation_codes: dict[str, Level]
    interpretation_system: str


class MutationRule(_Strict):
    token: str = Field(pattern=MUTATION_TOKEN)
    partial: list[str] = []
    inactive: list[str] = []


class CombinationRule(_Strict):
    of: list[str] = Field(min_length=1)
    requires: str | None = Field(default=None, pattern=MUTATION_TOKEN)
    min: int = Field(ge=1)
    partial: list[str] = []
    inactive: list[str] = []


class ResistanceRules(_Strict):
    evidence: list[str] = Field(min_length=1)
    mutations: list[MutationRule]
    combinations: list[CombinationRule] = []


class MulticlassRule(_Strict):
    classes: list[str] = Field(min_length=2)
    min_classes: int = Field(ge=1)
    evidence: list[str] = Field(min_length=1)


class HivSettingEntry(_Strict):
    """When a variant applies: every stated condition must hold (an empty setting always does)."""

    failing_classes_any: list[str] = []  # the failing regimen contains one of these classes
    never_taken: list[str] = []  # no line ever contained one of these classes
    first_line: bool | None = None  # the failing line is (True) or is not (False) line 1


class HivRationaleVariant(_Strict):
    when: HivSettingEntry
    text: str


class HivOptionEntry(_Strict):
    id: str = Field(pattern=r"^[a-z0-9-]+$")
    kind: Literal["test", "regimen", "construct", "continue"]
    rank: int = Field(ge=1)
    label: str
    label_integrase: str | None = None
    anchor: list[str] = []
    nrti_backbone: bool = False
    min_fully_active: int = Field(default=2, ge=0, le=4)
    # The setting in which min_fully_active (below two) is supported by a trial (NADIA).
    recycled_backbone_when: HivSettingEntry | None = None
    recycled_backbone_note: str | None = None  # says why fewer than two fully active is accepted
    multidrug_resistance_agent: bool = False
    rationale: str
    rationale_variants: list[HivRationaleVariant] = []  # the first that applies replaces it
    cautions: list[str] = []
    evidence: list[str] = Field(min_length=1)


class PresumedActiveEntry(_Strict):
    class_never_taken: str
    gene: str
    drugs: list[str] = Field(min_length=1)
    label: str
    evidence: list[str] = Field(min_length=1)


class HivRegimenRules(_Strict):
    multiclass: MulticlassRule
    genotype_window_days_after_stop: int = Field(ge=0, le=365)
    integrase_classes: list[str]
    companion_preference: list[str]
    boosters: dict[str, str]
    booster_class: str
    presumed_active: PresumedActiveEntry
    options: list[HivOptionEntry] = Field(min_length=1)


class AdherenceRules(_Strict):
    note_phrases: list[str] = Field(min_length=1)
    cation_class: str
    affected_classes: list[str] = Field(min_length=1)
    evidence: list[str] = Field(min_length=1)


class HivWording(_Strict):
    disclaimer: str
    prep_statement: str
    prep_acquisition: str
    prep_acquisition_integrase: str
    prep_low_level_rna: str
    prep_drugs: list[str] = Field(min_length=1)
    prep_statement_evidence: list[str] = Field(min_length=1)
    prep_acquisition_evidence: list[str] = Field(min_length=1)
    no_genotype_missing: str
    no_active_drug_recheck: str


class HbvRules(_Strict):
    tenofovir: list[str] = Field(min_length=1)
    partners: list[str] = Field(min_length=1)
    evidence: list[str] = Field(min_length=1)


class IcdCode(_Strict):
    code: str
    verified: str


class RenalRules(_Strict):
    tdf: str
    taf: str
    partner: str
    tdf_min_creatinine_clearance_ml_min: float = Field(gt=0)
    taf_min_creatinine_clearance_ml_min: float = Field(gt=0)
    dialysis_note: str
    below_taf_advice: str
    dialysis_conditions: dict[Literal["icd10cm", "snomed"], list[IcdCode]]
    evidence: list[str] = Field(min_length=1)


class InteractionEntry(_Strict):
    id: str = Field(pattern=r"^[a-z0-9-]+$")
    first: list[str] = Field(min_length=1)
    second: list[str] = Field(min_length=1)
    text: str
    evidence: list[str] = Field(min_length=1)


class HivFile(_Strict):
    genotype: GenotypeReading
    resistance: ResistanceRules
    regimens: HivRegimenRules
    hbv: HbvRules
    renal: RenalRules
    adherence: AdherenceRules
    wording: HivWording
    interactions: list[InteractionEntry] = []
    evidence: dict[str, EvidenceEntry] = {}


class BiomarkerCodes(_Strict):
    """LOINC codes of results that carry tumour biomarkers (mCODE / Genomics Reporting IG)."""

    # observations.yaml kind listing every result code below: the live FHIR searches request
    # Observations by the codes the rules read, so these must be among them.
    observation_kind: str
    variant_panels: list[str] = Field(min_length=1)  # Observation.code of a variant result
    gene_studied: list[str] = Field(min_length=1)  # component code: gene studied
    variant_text: list[str] = Field(min_length=1)  # component codes: c.HGVS, p.HGVS, variant
    present: list[str] = Field(min_length=1)  # "system|code" answers meaning present
    absent: list[str] = Field(min_length=1)
    not_tested_text: list[str] = Field(min_length=1)  # words meaning no result (not tested...)
    negative_text: list[str] = Field(min_length=1)  # words meaning the target was not found
    positive_text: list[str] = Field(min_length=1)  # words meaning the target was found
    verified: str


class BiomarkerLevel(_Strict):
    """A named result level ("low" for HER2 IHC 1+) and the text patterns that mean it."""

    level: str = Field(pattern=r"^[a-z0-9-]+$")
    patterns: list[str] = Field(min_length=1)  # regular expressions, case-insensitive
    means_unknown: bool = False  # a result that needs another test first (HER2 IHC 2+ without ISH)


class BiomarkerEntry(_Strict):
    label: str
    diseases: list[str] = Field(min_length=1)
    # variant: a gene alteration (detected / not-detected); level: a scored result read as one of
    # `levels` (HER2 IHC, PD-L1); histology: read from the disease Condition's text and codes.
    kind: Literal["variant", "level", "histology"]
    genes: list[str] = []  # HGNC symbols, matched as whole words
    aliases: list[str] = []  # other names seen in reports ("HER2" for ERBB2)
    # variant patterns (regular expressions) that must match for "detected"; empty: any
    # alteration of the genes counts. A result naming the gene with another variant is
    # not-detected for this biomarker.
    variants: list[str] = []
    # The variant names the target on its own ("T790M", "G12C"): a clause naming only the
    # variant speaks for this biomarker. Generic words ("fusion") never do.
    variants_name_the_gene: bool = False
    loinc: list[str] = []  # result codes that carry this biomarker directly
    observation_kinds: list[str] = []  # observations.yaml kinds whose text is this result (her2)
    # level -> HER2 receptor status it implies for the anti-HER2 pathways (IHC 1+ is negative)
    receptor_status: dict[str, Literal["positive", "negative"]] = {}
    levels: list[BiomarkerLevel] = []
    percent_levels: list[tuple[float, str]] = []  # (at least %, level), for a numeric score
    # A not-detected result dated before the failure does not rule the target out: it may have
    # been acquired under treatment (ESR1 under aromatase inhibitors, EGFR T790M under TKIs).
    retest_after_progression: bool = False
    # branch: an option needing this biomarker is shown labelled "if ..." while it is unknown;
    # prompt: it is listed as excluded until tested, and one testing prompt names every target.
    when_unknown: Literal["branch", "prompt"] = "branch"
    test: str  # what to order, in our words
    evidence: list[str] = Field(min_length=1)


class BiomarkersFile(_Strict):
    codes: BiomarkerCodes
    biomarkers: dict[str, BiomarkerEntry]
