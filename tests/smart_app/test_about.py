"""The page the CDS cards' source link points to says what the service is, and that it is
decision support."""

from __future__ import annotations

from salvage.app import create_app


def test_the_about_page_names_the_knowledge_base_and_the_disclaimer(tmp_path) -> None:
    app = create_app({"TESTING": True, "DATABASE_URL": str(tmp_path / "d.db")})
    kb = app.extensions["salvage_kb"]
    page = app.test_client().get("/").get_data(as_text=True)
    assert kb.version in page and "decision support" in page
    assert "/cds-services" in page
