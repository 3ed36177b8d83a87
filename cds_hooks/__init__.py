"""CDS Hooks 2.0 service (issue 5): not built yet. The engine and recommender it will call exist."""
