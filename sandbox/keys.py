"""The sandbox's signing keys (joserfc): ES384 for CDS Hooks requests, RS256 for id_tokens."""

from __future__ import annotations

import json
from pathlib import Path

from joserfc.jwk import ECKey, KeySet, RSAKey


class SandboxKeys:
    """Keys are generated once per data directory and published as a JWKS."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.cds = self._load_or_create(
            directory / "cds-es384.json",
            lambda: ECKey.generate_key("P-384", {"use": "sig", "alg": "ES384"}),
        )
        self.id_token = self._load_or_create(
            directory / "idtoken-rs256.json",
            lambda: RSAKey.generate_key(2048, {"use": "sig", "alg": "RS256"}),
        )

    @staticmethod
    def _load_or_create(path: Path, make):  # type: ignore[no-untyped-def]
        if path.exists():
            data = json.loads(path.read_text())
            return ECKey.import_key(data) if data["kty"] == "EC" else RSAKey.import_key(data)
        key = make()
        key.ensure_kid()
        path.write_text(json.dumps(key.as_dict(private=True)))
        path.chmod(0o600)
        return key

    def public_jwks(self) -> dict:
        return KeySet([self.cds, self.id_token]).as_dict(private=False)
