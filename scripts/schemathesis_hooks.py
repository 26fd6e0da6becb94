"""Schemathesis hooks: sign every request the way the API expects.

Loaded by scripts/schemathesis.sh through `SCHEMATHESIS_HOOKS=scripts/schemathesis_hooks.py`
(schemathesis 4.x). The credentials come from the environment:

    ST_API_KEY      the application's API key (sent as the `api-key` header)
    ST_API_SECRET   its API secret (the HMAC key: the secret's UTF-8 bytes)

The scheme is docs/api.md "Authentication" (Striga's):

    Authorization: HMAC <unix-ms>:<hex HMAC-SHA256(secret, unix-ms + METHOD + path + md5hex(body))>

where `path` is the request path below `/api/v1` with its query string, exactly as sent, and
an empty body is hashed as `{}`.

The signature is computed by a `requests` auth object, i.e. on the *prepared* request, so it
covers exactly the bytes and the request target that go on the wire (after schemathesis has
serialised the body and encoded the query). It is registered with
`schemathesis.auth.set_from_requests`, which makes it *explicit* auth for schemathesis, so the
`ignored_auth` probes (which strip auth) are sent unsigned and exercise the 401 paths.

Negative test cases whose *headers* were generated to break the schema (e.g. `api-key` and
`Authorization` removed: "in header - violates `required`") must reach the server as
generated, or schemathesis reports the server accepting them. Schemathesis 4.32 does not
recognise that container-level mutation as a negated security parameter and still attaches
the auth, so a `before_call` hook marks such cases and the auth leaves them unsigned. A case
is signed only when its headers were generated in positive mode and it carries both
security headers (with generated placeholder values, which the signature replaces).
At exit the hooks print how many requests were signed and how many were left unsigned.
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import os
import sys
import threading
import time
from collections import Counter

import requests
import schemathesis
from schemathesis.core.parameters import ParameterLocation

API_PREFIX = "/api/v1"
EMPTY_BODY = b"{}"
SECURITY_HEADERS = ("api-key", "authorization")

# Whether the request being sent on this thread may be signed (set by `before_call`, which
# runs on the thread that then sends the request).
_state = threading.local()
_counts: Counter[str] = Counter()


def signed_path(path_url: str) -> str:
    """The request target below `/api/v1` (with `?query`), as the server computes it."""
    if path_url.startswith(API_PREFIX):
        return path_url[len(API_PREFIX) :]
    return path_url


def body_bytes(body: object) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    raise TypeError(f"cannot sign a streamed request body ({type(body).__name__})")


def authorization(secret: bytes, unix_ms: int, method: str, path: str, body: bytes) -> str:
    md5 = hashlib.md5(body or EMPTY_BODY).hexdigest()
    message = f"{unix_ms}{method.upper()}{path}{md5}".encode("utf-8")
    return f"HMAC {unix_ms}:{hmac.new(secret, message, hashlib.sha256).hexdigest()}"


class StrigaHmacAuth(requests.auth.AuthBase):
    """Adds `api-key` and `Authorization: HMAC …` to a prepared request."""

    def __init__(self, api_key: str, api_secret: str, *, for_schemathesis: bool = False) -> None:
        self.api_key = api_key
        self.secret = api_secret.encode("utf-8")
        # Under schemathesis: leave the cases described in the module docstring unsigned.
        # Otherwise (scripts/schemathesis.sh's own check): sign every request.
        self.for_schemathesis = for_schemathesis

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.for_schemathesis:
            present = {name.lower() for name in r.headers}
            if not getattr(_state, "sign", True):
                _counts["unsigned (negative-mode headers)"] += 1
                _debug("unsigned, negative-mode headers", r)
                return r
            if not all(name in present for name in SECURITY_HEADERS):
                _counts["unsigned (no security headers: public endpoint)"] += 1
                _debug("unsigned, no security headers", r)
                return r
            _counts["signed"] += 1
        unix_ms = int(time.time() * 1000)
        # `path_url` is the request target requests writes on the request line.
        path = signed_path(r.path_url)
        r.headers["api-key"] = self.api_key
        r.headers["Authorization"] = authorization(
            self.secret, unix_ms, r.method or "GET", path, body_bytes(r.body)
        )
        return r


def from_env(*, for_schemathesis: bool = False) -> StrigaHmacAuth:
    try:
        return StrigaHmacAuth(
            os.environ["ST_API_KEY"], os.environ["ST_API_SECRET"], for_schemathesis=for_schemathesis
        )
    except KeyError as missing:
        raise RuntimeError(f"schemathesis_hooks: set {missing} (the application's credentials)") from None


def _headers_negative(case: object) -> bool:
    meta = getattr(case, "meta", None)
    return meta is not None and meta.is_negative_at(ParameterLocation.HEADER)


def _describe(case: object) -> str:
    meta = getattr(case, "meta", None)
    if meta is None:
        return "no metadata"
    try:
        components = {loc.value: comp.mode.value for loc, comp in meta.components.items()}
        return f"phase={meta.phase.name.value} mode={meta.generation.mode.value} components={components}"
    except Exception as exc:  # diagnostics only
        return f"metadata unreadable: {exc!r}"


@schemathesis.hook
def before_call(context, case, kwargs):  # noqa: ARG001 (the hook's signature)
    _state.sign = not _headers_negative(case)
    _state.case = case


def _debug(reason: str, r: requests.PreparedRequest) -> None:
    if os.environ.get("ST_HOOKS_DEBUG"):
        case = getattr(_state, "case", None)
        print(f"[schemathesis_hooks] {reason}: {r.method} {r.path_url} ({_describe(case)})", file=sys.stderr)


def _report() -> None:
    if _counts:
        summary = ", ".join(f"{n} {what}" for what, n in sorted(_counts.items()))
        print(f"[schemathesis_hooks] requests: {summary}", file=sys.stderr)


# Only when loaded by schemathesis (SCHEMATHESIS_HOOKS); scripts/schemathesis.sh also loads
# this file to check that the server accepts these signatures, and sets ST_HOOKS_CHECK then.
if not os.environ.get("ST_HOOKS_CHECK"):
    schemathesis.auth.set_from_requests(from_env(for_schemathesis=True))
    atexit.register(_report)
