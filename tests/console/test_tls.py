"""``Secure`` console cookies behind a TLS-terminating proxy, under uvicorn configured as ``mvno-core
serve`` configures it: the proxy's ``X-Forwarded-Proto: https`` is believed from an address in
``MVNO_FORWARDED_ALLOW_IPS`` only, so a client talking to the app directly cannot switch it."""

from __future__ import annotations

import httpx
import pytest

from mvno_core.kernel.config import Settings
from tests.conftest import ShiftableClock
from tests.console.conftest import csrf_of
from tests.console.live import insert_key, live_app

VIA_TLS_PROXY = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}


def _cookie_flags(response: httpx.Response, name: str) -> set[str]:
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(f"{name}="))
    return {part.strip().lower() for part in cookie.split(";")[1:]}


def _sign_in(base: str, secret: str, headers: dict[str, str]) -> httpx.Response:
    """Sign-in as a browser behind the proxy would do it. The cookie jar is bypassed: a client keeps a
    Secure cookie for https only, and this hop (proxy → app) is plain http."""
    with httpx.Client(base_url=base, trust_env=False) as browser:
        form = browser.get("/console/login", headers=headers)
        assert form.status_code == 200, form.text
        pre = form.cookies["mvno_console_pre"]
        signed_in = browser.post(
            "/console/login",
            data={"csrf": csrf_of(form.text), "api_key": secret},
            headers={**headers, "Cookie": f"mvno_console_pre={pre}"},
        )
    assert signed_in.status_code == 303, signed_in.text
    return signed_in


@pytest.mark.parametrize(
    ("trusted", "forwarded", "secure"),
    [
        # The proxy on this host (the default): its word on https is taken.
        ("127.0.0.1", VIA_TLS_PROXY, True),
        ("127.0.0.1", {}, False),
        # The same header from an address that is not the configured proxy: ignored.
        ("192.0.2.10", VIA_TLS_PROXY, False),
    ],
)
def test_cookies_are_secure_only_when_a_trusted_proxy_says_https(
    settings: Settings,
    clock: ShiftableClock,
    conninfo: str,
    trusted: str,
    forwarded: dict[str, str],
    secure: bool,
) -> None:
    secret = insert_key(conninfo, "operator")
    with live_app(settings.model_copy(update={"forwarded_allow_ips": trusted}), clock) as base:
        signed_in = _sign_in(base, secret, forwarded)
    for name in ("mvno_console", "mvno_console_pre"):
        flags = _cookie_flags(signed_in, name)
        assert {"httponly", "samesite=strict", "path=/console"} <= flags
        assert ("secure" in flags) is secure, (name, flags)
