"""Failed sign-ins are limited per email and per client address, on the API's /login and the dashboard's
sign-in form alike: past the limit a sign-in is refused with 429 and Retry-After before its password is
checked (the right one too, and for an email no user has, so the refusal tells nothing about accounts),
until the window moves on; successful sign-ins never count."""

from __future__ import annotations

import time

import httpx
import pytest
from limits import parse

from orchestrator.errors import ConfigError
from orchestrator.identity import passwords
from orchestrator.server.dashboard import csrf
from orchestrator.server.login_limit import LOGIN_LIMIT_ENV, LoginLimiter, configured_limit
from orchestrator.store import db
from orchestrator.store import identity as store
from tests.integration.api_fixtures import Api, api, assert_problem

__all__ = ["api"]  # the fixture, imported for pytest

PASSWORD = "correct horse battery"
WINDOW = 5  # seconds: the limit below, 3 failures per 5 s (room for argon2 on a loaded machine)


@pytest.fixture
def limited(api: Api) -> Api:
    with db.open_sessions(api.url).begin() as session:
        store.create_user(
            session, "pw@example.com", "viewer", password_hash=passwords.hash_password(PASSWORD)
        )
    api.app.state.login_limiter = LoginLimiter(parse(f"3 per {WINDOW} seconds"))
    return api


def sign_in(api: Api, email: str, password: str) -> httpx.Response:
    return api.call(None, "POST", "/login", json={"email": email, "password": password})


def test_the_api_refuses_sign_ins_past_the_limit_until_the_window_moves_on(limited: Api) -> None:
    for _ in range(5):
        assert sign_in(limited, "pw@example.com", PASSWORD).status_code == 201  # successes never count
    started = time.monotonic()
    for _ in range(3):
        assert_problem(sign_in(limited, "pw@example.com", "wrong"), 401)
    for email, password in (("pw@example.com", PASSWORD), ("nobody@example.com", "x")):
        refused = sign_in(limited, email, password)
        body = assert_problem(refused, 429)
        assert "too many failed sign-ins" in body["detail"]
        assert 1 <= int(refused.headers["Retry-After"]) <= WINDOW
    assert time.monotonic() - started < WINDOW  # (the refusals above fell inside the window)
    time.sleep(WINDOW + 0.2)
    assert sign_in(limited, "pw@example.com", PASSWORD).status_code == 201


def test_an_emails_failures_hold_it_back_from_another_address(limited: Api) -> None:
    limiter: LoginLimiter = limited.app.state.login_limiter
    for _ in range(3):
        limiter.failed("PW@example.com ", "192.0.2.7")  # another client, the same email written otherwise
    assert_problem(sign_in(limited, "pw@example.com", PASSWORD), 429)


def test_the_dashboard_form_is_held_back_too(limited: Api) -> None:
    with httpx.Client(base_url=limited.base, timeout=60) as browser:

        def post(password: str) -> httpx.Response:
            form = browser.get("/login").text
            token = form.split(f'name="{csrf.FIELD}" value="', 1)[1].split('"', 1)[0]
            fields = {"email": "pw@example.com", "password": password, csrf.FIELD: token}
            return browser.post("/login", data=fields)

        for _ in range(3):
            assert post("wrong").status_code == 401
        refused = post(PASSWORD)
        assert refused.status_code == 429 and "too many failed sign-ins" in refused.text
        assert int(refused.headers["Retry-After"]) >= 1
        assert "orchestrator_session" not in refused.headers.get("set-cookie", "")


def test_a_limit_that_is_not_one_is_bad_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOGIN_LIMIT_ENV, "lots")
    with pytest.raises(ConfigError, match="ORCHESTRATOR_LOGIN_LIMIT='lots' is not a limit"):
        configured_limit()
    monkeypatch.setenv(LOGIN_LIMIT_ENV, "5 per minute")
    assert configured_limit().amount == 5
