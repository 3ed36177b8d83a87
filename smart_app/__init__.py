"""SMART on FHIR app (SMART App Launch 2.2): EHR and standalone launch, then one screen with the
patient's lines of therapy, failures, key markers and salvage options."""
