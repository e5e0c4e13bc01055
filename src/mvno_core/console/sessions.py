"""Console sessions: a signed cookie naming the API key, never its secret.

The cookie carries ``(key id, role, CSRF token, signed-in time, last-seen time)`` and an HMAC-SHA-256
under a key kept in a file outside the database (``console_key_path``, 0600, created on first use), so
a database dump cannot forge a session. Every request re-reads the key row (a revoked key ends its
sessions at once), refuses a session idle longer than ``console_idle_minutes`` (on the app's clock, so
tests move it) and re-issues the cookie with a new last-seen time.

Stateless by choice (no table, no migration): signing out deletes the cookie; a copy taken before
sign-out stays usable until it idles out or reaches ``ABSOLUTE_HOURS``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

from fastapi import Request, Response

COOKIE = "mvno_console"
# Before sign-in: a random value whose HMAC is the sign-in form's CSRF token (login CSRF).
PRE_COOKIE = "mvno_console_pre"
LANG_COOKIE = "mvno_console_lang"
FLASH_COOKIE = "mvno_console_flash"
PATH = "/console"
# However active, a session ends after this long: sign in again (bounds a stolen cookie's life).
ABSOLUTE_HOURS = 12


@lru_cache(maxsize=8)
def _key_at(path: Path) -> bytes:
    try:
        return base64.b64decode(path.read_bytes().strip(), validate=True)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    try:
        # O_EXCL: two processes starting at once never overwrite each other's key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return base64.b64decode(path.read_bytes().strip(), validate=True)
    with os.fdopen(fd, "wb") as handle:
        handle.write(base64.b64encode(key) + b"\n")
    return key


def signing_key(request: Request) -> bytes:
    path: Path = request.app.state.settings.console_key_path()
    return _key_at(path.resolve())


def _mac(key: bytes, message: bytes) -> str:
    return base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode().rstrip("=")


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    key_id: str
    role: str
    csrf: str
    signed_in: datetime
    last_seen: datetime

    def encode(self, key: bytes) -> str:
        payload = json.dumps(
            [self.key_id, self.role, self.csrf, self.signed_in.timestamp(), self.last_seen.timestamp()],
            separators=(",", ":"),
        ).encode()
        body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        return f"{body}.{_mac(key, b'session:' + body.encode())}"

    @classmethod
    def decode(cls, value: str, key: bytes, tz_now: datetime) -> ConsoleSession | None:
        body, _, mac = value.partition(".")
        if not body or not hmac.compare_digest(mac, _mac(key, b"session:" + body.encode())):
            return None
        try:
            key_id, role, csrf, signed_in, last_seen = json.loads(
                base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            )
            return cls(
                key_id=str(key_id),
                role=str(role),
                csrf=str(csrf),
                signed_in=datetime.fromtimestamp(float(signed_in), tz_now.tzinfo),
                last_seen=datetime.fromtimestamp(float(last_seen), tz_now.tzinfo),
            )
        except (ValueError, TypeError):
            return None

    def expired(self, now: datetime, idle_minutes: int) -> bool:
        return now - self.last_seen > timedelta(minutes=idle_minutes) or now - self.signed_in > timedelta(
            hours=ABSOLUTE_HOURS
        )


def new_session(key_id: str, role: str, now: datetime) -> ConsoleSession:
    return ConsoleSession(
        key_id=key_id, role=role, csrf=secrets.token_urlsafe(32), signed_in=now, last_seen=now
    )


def read_session(request: Request, now: datetime) -> ConsoleSession | None:
    """The signed session of this request, if any and not idle too long."""
    value = request.cookies.get(COOKIE)
    if not value:
        return None
    session = ConsoleSession.decode(value, signing_key(request), now)
    if session is None or session.expired(now, request.app.state.settings.console_idle_minutes):
        return None
    return session


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    """HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it), Secure over
    https, scoped to /console."""
    response.set_cookie(
        name, value, path=PATH, httponly=True, samesite="strict", secure=_secure(request), max_age=None
    )


def write_session(request: Request, response: Response, session: ConsoleSession) -> None:
    set_cookie(request, response, COOKIE, session.encode(signing_key(request)))


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(name, path=PATH, httponly=True, samesite="strict", secure=_secure(request))


def login_csrf(request: Request, pre: str) -> str:
    """The sign-in form's token: bound to the pre-session cookie, so another site cannot sign a
    victim's browser in under its own key."""
    return _mac(signing_key(request), b"login:" + pre.encode())


def token_matches(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())
