"""OAuth endpoints under hostile input: NUL characters, and what the consent page gives away."""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from sqlalchemy import update

from debtgraph.domain.creditors.models import User
from debtgraph.domain.oauth.models import AuthorizationCode
from tests.integration.cleavr_support import count
from tests.integration.test_oauth import PASSWORD, REDIRECT, authorize, code_for, creditor, exchange

NUL_ID = "client\x00id"


def _basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def _error_text(page: str) -> str:
    match = re.search(r'<div class="errors">(.*?)</div>', page, re.S)
    assert match, page
    return match.group(1)


async def test_nul_in_authorize_client_id_is_an_error_page_not_a_500(
    client: httpx.AsyncClient, make_platform: Any
) -> None:
    await make_platform()
    response = await client.get(
        "/oauth/authorize",
        params={
            "client_id": NUL_ID,
            "redirect_uri": REDIRECT,
            "response_type": "code",
            "scope": "users:read",
            "state": "s",
        },
    )
    # RFC 6749 §4.1.2.1: an invalid client_id is told to the user, never redirected.
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "client_id" in response.text


async def test_nul_in_token_and_revoke_is_a_clean_oauth_error(
    client: httpx.AsyncClient, make_platform: Any
) -> None:
    acme = await make_platform()
    secret = acme.client_secret
    for path, form in [
        (
            "/oauth/token",
            {"grant_type": "authorization_code", "code": "x", "redirect_uri": REDIRECT},
        ),
        ("/oauth/token", {"grant_type": "refresh_token", "refresh_token": "x"}),
        ("/oauth/revoke", {"token": "x"}),
    ]:
        posted = await client.post(
            path, data={**form, "client_id": NUL_ID, "client_secret": secret}
        )
        assert posted.status_code == 400, posted.text
        assert posted.json()["error"] == "invalid_request"
        assert posted.headers["cache-control"] == "no-store"
        basic = await client.post(path, data=form, headers=_basic(NUL_ID, secret))
        assert basic.status_code == 401, basic.text
        assert basic.json()["error"] == "invalid_client"
        other = {**form, "client_id": acme.platform.client_id, "client_secret": secret}
        nul_value = await client.post(path, data={**other, "token": "a\x00b", "code": "a\x00b"})
        assert nul_value.status_code == 400, nul_value.text
        assert nul_value.json()["error"] == "invalid_request"


async def test_nul_in_the_consent_email_is_a_failed_sign_in(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    acme = await make_platform()
    await creditor(client, db, acme.api_key)
    response = await authorize(client, acme, email="ada\x00@x.test")
    assert response.status_code == 401
    assert await count(db, AuthorizationCode) == 0


async def test_suspended_account_fails_like_a_wrong_password(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    acme = await make_platform()
    uid = await creditor(client, db, acme.api_key)
    async with db() as session:
        await session.execute(update(User).where(User.public_id == uid).values(status="suspended"))
        await session.commit()
    right = await authorize(client, acme, password=PASSWORD)
    wrong = await authorize(client, acme, password="not the password")
    assert right.status_code == wrong.status_code == 401
    # Nothing on the page tells a right password from a wrong one.
    assert _error_text(right.text) == _error_text(wrong.text)
    assert "suspended" in _error_text(right.text)  # …while a suspended user still learns why
    assert await count(db, AuthorizationCode) == 0


@pytest.mark.parametrize("credentials", [b"\xff:x", b"cl_x:\xe9", b"\xc3("])
async def test_basic_credentials_that_are_no_utf8_are_invalid_client(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, credentials: bytes
) -> None:
    # Anonymous, one request each: a 500 and an ERROR with its trace before (review).
    header = {"Authorization": "Basic " + base64.b64encode(credentials).decode()}
    for path, form in [
        ("/oauth/token", {"grant_type": "refresh_token", "refresh_token": "x"}),
        ("/oauth/revoke", {"token": "x"}),
    ]:
        answered = await client.post(path, data=form, headers=header)
        assert answered.status_code == 401, answered.text
        assert answered.json()["error"] == "invalid_client"
        assert answered.headers["www-authenticate"].startswith("Basic")
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []


# RFC 6749 §3.1: request parameters are given at most once.
def _authorize_params(client_id: str) -> list[tuple[str, str]]:
    return [
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", "users:read"),
        ("state", "s-1"),
        ("code_challenge", "c" * 43),
        ("code_challenge_method", "S256"),
    ]


@pytest.mark.parametrize("name", ["client_id", "redirect_uri"])
async def test_a_client_or_redirect_given_twice_is_told_to_the_user(
    client: httpx.AsyncClient, make_platform: Any, name: str
) -> None:
    acme = await make_platform()
    params = _authorize_params(acme.platform.client_id)
    params.append((name, dict(params)[name]))  # even the same value: which to trust is unknown
    response = await client.get("/oauth/authorize", params=params)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert f"The {name} parameter is given more than once." in response.text


@pytest.mark.parametrize(
    "name", ["response_type", "scope", "state", "code_challenge", "code_challenge_method"]
)
async def test_another_parameter_given_twice_is_an_invalid_request(
    client: httpx.AsyncClient, make_platform: Any, name: str
) -> None:
    acme = await make_platform()
    params = _authorize_params(acme.platform.client_id)
    params.append((name, dict(params)[name]))
    response = await client.get("/oauth/authorize", params=params)
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["error"] == ["invalid_request"]
    assert query["error_description"] == [f"The {name} parameter is given more than once."]
    # Its state is sent back, unless the state itself is the one given twice.
    assert query.get("state") == (None if name == "state" else ["s-1"])


async def test_an_unknown_parameter_given_twice_is_ignored(
    client: httpx.AsyncClient, make_platform: Any
) -> None:
    acme = await make_platform()
    params = [*_authorize_params(acme.platform.client_id), ("prompt", "a"), ("prompt", "b")]
    response = await client.get("/oauth/authorize", params=params)
    assert response.status_code == 302
    assert "/oauth/consent?request=" in response.headers["location"]


# RFC 6749 §3.2 (and RFC 7009 §2.1 for revocation): token request parameters at most once.
_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.mark.parametrize("name", ["code", "grant_type", "client_secret", "redirect_uri"])
async def test_a_token_parameter_given_twice_is_an_invalid_request(
    client: httpx.AsyncClient, make_platform: Any, db: Any, name: str
) -> None:
    acme = await make_platform()
    await creditor(client, db, acme.api_key)
    code = await code_for(client, acme)
    form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("client_id", acme.platform.client_id),
        ("client_secret", acme.client_secret),
    ]
    # A bogus value first and the right one last: the last used to win, and tokens came back.
    bogus = {"code": "bogus", "grant_type": "refresh_token", "client_secret": "x"}
    form.insert(0, (name, bogus.get(name, dict(form)[name])))
    response = await client.post("/oauth/token", content=urlencode(form), headers=_FORM)
    assert response.status_code == 400, response.text
    assert response.json() == {
        "error": "invalid_request",
        "error_description": f"The {name} parameter is given more than once.",
    }
    # Nothing was spent: the code still works once, sent right.
    assert (await exchange(client, acme, code)).status_code == 200


async def test_a_revocation_naming_its_token_twice_is_an_invalid_request(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    acme = await make_platform()
    uid = await creditor(client, db, acme.api_key)
    issued = (await exchange(client, acme, await code_for(client, acme))).json()
    credentials = [("client_id", acme.platform.client_id), ("client_secret", acme.client_secret)]
    twice = [("token", "other"), ("token", issued["access_token"]), *credentials]
    response = await client.post("/oauth/revoke", content=urlencode(twice), headers=_FORM)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    bearer = {"Authorization": f"Bearer {issued['access_token']}"}
    assert (await client.get(f"/v1/users/{uid}", headers=bearer)).status_code == 200  # live
