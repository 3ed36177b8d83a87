"""Server-side sessions in the project database; the cookie carries only a random id.

Tokens and PKCE verifiers never reach the cookie (S11); at rest they are encrypted with a key
derived from SALVAGE_SECRET_KEY, so a copy of the database alone does not reveal them.

State is kept per launch, not per browser (issue 18, quirk 18): Epic runs an embedded app as
several instances in one browser session, and with one session per cookie a second launch would
replace the first window's patient. The cookie only authenticates the browser; each launch's
state is stored under a key derived from the browser and a launch id carried in the app's URLs,
so two interleaved launches keep their own patient. Neither the cookie nor the launch id alone
opens a launch.
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
LAUNCH_PARAM = "ctx"  # the launch id in the app's URLs (/app?ctx=...)
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

    # -- browser and launch keys ------------------------------------------------------------
    def browser(self, cookie: str | None) -> str | None:
        """The browser id behind a cookie we issued, or None."""
        data = self.load(cookie)
        browser = data.get("browser") if data else None
        return browser if isinstance(browser, str) else None

    def new_browser(self) -> tuple[str, str]:
        """(cookie, browser id) for a browser without a valid cookie."""
        browser = secrets.token_urlsafe(32)
        return self.create({"browser": browser}), browser

    def rotate(self, cookie: str, browser: str) -> str:
        """A new cookie for the same browser at login; the old one stops working (session
        fixation), while the browser's other launches stay open."""
        self.delete(cookie)
        return self.create({"browser": browser})

    @staticmethod
    def key(browser: str, kind: str, name: str) -> str:
        """The row of one pending sign-in (by state) or one launch (by launch id)."""
        return hashlib.sha256(f"{kind}:{browser}:{name}".encode()).hexdigest()
