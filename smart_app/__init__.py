"""SMART on FHIR app (issue 6): not built yet. The engine and recommender it will show exist."""
