"""API keys with scopes: stored as SHA-256 digests, compared in constant time.

A key is presented as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. ``admin``
grants every scope. With no keys configured, the server accepts every request and binds to
loopback only.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from watchkeeper.config import Config
from watchkeeper.errors import ConfigError, ConfigProblem


@dataclass(frozen=True)
class Key:
    name: str
    scopes: frozenset[str]
    digest: bytes


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def new_key() -> tuple[str, str]:
    """A fresh random key and its SHA-256 (hex), for the config."""
    key = "wk_" + secrets.token_urlsafe(32)
    return key, digest(key).hex()


def load_keys(config: Config, environ: Mapping[str, str] | None = None) -> list[Key]:
    env = os.environ if environ is None else environ
    keys = []
    problems = []
    for i, k in enumerate(config.server.api_keys):
        if k.sha256 is not None:
            keys.append(Key(k.name, frozenset(k.scopes), bytes.fromhex(k.sha256)))
            continue
        assert k.env is not None
        value = env.get(k.env)
        if not value:
            problems.append(
                ConfigProblem(
                    f"server.api_keys[{i}].env", f"environment variable {k.env} is not set"
                )
            )
            continue
        keys.append(Key(k.name, frozenset(k.scopes), digest(value)))
    if problems:
        raise ConfigError(problems)
    return keys


class Denied(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def check(keys: Sequence[Key], presented: str | None, scope: str) -> str | None:
    """The name of the key that grants ``scope``; raises Denied (401 or 403). Every stored
    digest is compared, matched or not, so timing does not tell how close a guess was."""
    if not keys:
        return None
    if not presented:
        raise Denied(401, "an API key is required (Authorization: Bearer <key>)")
    given = digest(presented)
    found: Key | None = None
    for key in keys:
        if hmac.compare_digest(given, key.digest):
            found = key
    if found is None:
        raise Denied(401, "the API key is not valid")
    if scope not in found.scopes and "admin" not in found.scopes:
        raise Denied(403, f"the key {found.name!r} lacks the {scope!r} scope")
    return found.name


def presented_key(
    headers: Mapping[str, str],
    cookies: Mapping[str, str] | None = None,
    allow_cookie: bool = False,
) -> str | None:
    """The key of a request: the Authorization or X-API-Key header; the dashboard's session
    cookie only where ``allow_cookie`` (its pages, and its own calls that carry the CSRF
    token), so a cookie alone never authenticates an API call a foreign page makes."""
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    if headers.get("x-api-key"):
        return headers["x-api-key"]
    return (cookies or {}).get(SESSION_COOKIE) or None if allow_cookie else None


SESSION_COOKIE = "wk_session"  # HttpOnly: the key, out of reach of the page's scripts
CSRF_COOKIE = "wk_csrf"  # readable by the dashboard's script, which echoes it in a header
CSRF_HEADER = "x-csrf-token"


def csrf_ok(headers: Mapping[str, str], cookies: Mapping[str, str]) -> bool:
    """The double-submit check: the header equals the cookie only on the dashboard's own
    pages, since a foreign page can neither read the cookie nor set the header cross-site."""
    token, cookie = headers.get(CSRF_HEADER, ""), cookies.get(CSRF_COOKIE, "")
    return bool(token) and bool(cookie) and hmac.compare_digest(token, cookie)


def same_origin(headers: Mapping[str, str], scheme: str) -> bool:
    """Whether a browser's request comes from a page of this server (no Origin: not a
    browser's cross-site request, as from the SDK, curl or Prometheus)."""
    origin = headers.get("origin")
    if origin is None:
        return True
    return origin == f"{scheme}://{headers.get('host', '')}"
