"""Server-side sessions in the project database; the cookie carries only a random id.

Tokens and PKCE verifiers never reach the cookie (S11); at rest they are encrypted with a key
derived from SALVAGE_SECRET_KEY, so a copy of the database alone does not reveal them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

COOKIE = "salvage_sid"
LIFETIME_SECONDS = 8 * 3600


class SessionStore:
    def __init__(self, db: Any, secret_key: str) -> None:
        self.db = db
        digest = hashlib.sha256(f"salvage-smart-session:{secret_key}".encode()).digest()
        self.fernet = Fernet(base64.urlsafe_b64encode(digest))

    def create(self, data: dict[str, Any]) -> str:
        sid = secrets.token_urlsafe(32)
        self.save(sid, data)
        return sid

    def save(self, sid: str, data: dict[str, Any]) -> None:
        blob = self.fernet.encrypt(json.dumps(data).encode()).decode()
        self.db.session_save(sid, blob, time.time() + LIFETIME_SECONDS)

    def load(self, sid: str | None) -> dict[str, Any] | None:
        if not sid:
            return None
        row = self.db.session_load(sid)
        if row is None or row[1] < time.time():
            return None
        try:
            return json.loads(self.fernet.decrypt(row[0].encode()))
        except InvalidToken:
            return None

    def delete(self, sid: str) -> None:
        self.db.session_delete(sid)
