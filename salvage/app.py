"""The composition root: create_app() reads configuration, opens the database, and mounts the
CDS Hooks service and the SMART app as blueprints."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, render_template, request

from salvage import service
from salvage.db import Database
from salvage.errors import DatabaseUnavailable, LaunchError, RequestError, Unauthorized
from salvage.instance_files import shared_secret

DEFAULTS: dict[str, Any] = {
    "BASE_URL": "http://127.0.0.1:8700",
    "DATABASE_URL": None,  # default: a SQLite file in the instance folder
    "CDS_CLIENTS": None,  # file of trusted CDS clients (issuer, JWKS, allowed fhirServer bases)
    "CDS_INSECURE_DEV": False,  # only for local development: accept unsigned CDS requests
    "CDS_FETCH_BUDGET_SECONDS": 2.0,
    "CDS_MAX_BODY_BYTES": 10 * 1024 * 1024,
    "CORS_ORIGINS": "",
    "KB_OVERLAY": None,
    "SMART_CLIENTS": None,
    # Lets dev_only entries (the CDS Hooks sandbox, open test servers) load on a public https
    # SALVAGE_BASE_URL. Only for a development instance: every log line then says so.
    "ALLOW_DEV_ENTRIES": False,
}


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Defaults, then SALVAGE_* environment variables, then the test configuration."""
    instance = (test_config or {}).get("INSTANCE_PATH")
    app = Flask(
        __name__, instance_relative_config=True, instance_path=str(instance) if instance else None
    )
    app.config.update(DEFAULTS)
    app.config.from_prefixed_env("SALVAGE")  # SALVAGE_BASE_URL -> BASE_URL (values parsed as JSON)
    if test_config:
        app.config.update(test_config)
    app.config["MAX_CONTENT_LENGTH"] = int(app.config["CDS_MAX_BODY_BYTES"])
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if not app.config.get("SECRET_KEY"):
        # Every worker must encrypt sessions with the same key: one file, created once.
        import secrets

        app.config["SECRET_KEY"] = shared_secret(
            Path(app.instance_path) / "secret_key", lambda: secrets.token_hex(32)
        )
    url = app.config.get("DATABASE_URL") or str(Path(app.instance_path) / "salvage.db")
    app.extensions["salvage_db"] = Database(url)
    # One knowledge base per process, the same one every surface answers from (salvage.service).
    app.extensions["salvage_kb"] = service.knowledge_base(app.config.get("KB_OVERLAY") or "")

    from cds_hooks import service as cds_service
    from cds_hooks.security import load_trusted_clients
    from smart_app import views as smart_views
    from smart_app.registry import load_registrations

    # Operator files are validated now, so a mistake stops start-up (naming file and field)
    # instead of failing the first request.
    app.extensions["salvage_cds_clients"] = load_trusted_clients(app.config.get("CDS_CLIENTS"))
    app.extensions["salvage_smart_registrations"] = load_registrations(
        app.config.get("SMART_CLIENTS")
    )
    _check_dev_only_entries(app)

    app.register_blueprint(cds_service.bp)
    app.register_blueprint(smart_views.bp)

    @app.errorhandler(413)
    def too_large(_: Any) -> Any:
        return jsonify({"error": "request body too large"}), 413

    @app.errorhandler(RequestError)
    def request_error(error: RequestError) -> Any:
        """The one place where salvage-cds errors become responses (every surface)."""
        if isinstance(error, Unauthorized):
            # Bare 401: the reason is logged (never the token), not told to the caller (H17).
            logging.getLogger("salvage").info("%s refused: %s", request.path, error)
            return Response(status=401)
        if isinstance(error, DatabaseUnavailable):
            logging.getLogger("salvage").error("database unavailable (read-only, full or down)")
            message = "the service's database is unavailable; try again later"
        else:
            message = str(error)
        if isinstance(error, LaunchError):  # the SMART app's pages: a page asking to relaunch
            if request.path.startswith("/api/"):
                return jsonify({"error": message}), error.status
            return render_template("smart_error.html", message=message), error.status
        return jsonify({"error": message}), error.status

    @app.errorhandler(404)
    def not_found(_: Any) -> Any:
        return jsonify({"error": "not found"}), 404

    @app.errorhandler(405)
    def not_allowed(_: Any) -> Any:
        return jsonify({"error": "method not allowed"}), 405

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Any:
        from werkzeug.exceptions import HTTPException

        if isinstance(error, HTTPException):
            return jsonify({"error": error.description}), error.code
        logging.getLogger("salvage").exception("unexpected error")  # our bug, not client input
        return jsonify({"error": "internal error"}), 500

    return app


def _check_dev_only_entries(app: Flask) -> None:
    """dev_only entries are refused on a production-like base URL unless explicitly allowed."""
    from salvage.config import check_dev_only

    allowed = bool(app.config.get("ALLOW_DEV_ENTRIES"))
    base = str(app.config["BASE_URL"])
    cds = [c.iss for c in app.extensions["salvage_cds_clients"].values() if c.dev_only]
    smart = [r.iss for r in app.extensions["salvage_smart_registrations"].values() if r.dev_only]
    check_dev_only(app.config.get("CDS_CLIENTS"), cds, base, allowed)
    check_dev_only(app.config.get("SMART_CLIENTS"), smart, base, allowed)
    for iss in cds + smart:
        logging.getLogger("salvage").warning(
            "DEV-ONLY entry loaded: %s (for testing against a public sandbox, never patients)", iss
        )
