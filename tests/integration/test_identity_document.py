"""The representative's identity document on the hosted onboarding page (PRODUCT.md §2, §12).

The page is where the creditor supplies ``representative.identity_document``: a PDF, JPEG or PNG
file judged by its bytes, at most 10 MB (never more than ``MAX_UPLOAD_MB``), stored under
``UPLOAD_DIR`` with a name of our own. Once stored, REST and GraphQL requirements drop the item
and ``stripe_account_status`` is ``enabled`` for an active creditor with an IBAN.
"""

from __future__ import annotations

import asyncio
import re
import stat
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from debtgraph.domain.core.errors import NUL_MESSAGE
from debtgraph.domain.core.outbox import Event
from debtgraph.domain.creditors import identity_documents
from debtgraph.domain.creditors.models import User
from debtgraph.settings import Settings
from tests.conftest import gql
from tests.integration.cleavr_support import bearer, complete_user, create_user, field_error
from tests.integration.test_request_path import post_scope
from tests.integration.test_users import ONBOARDING_FORM

FIELD = "representative.identity_document"
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64
MB = 1024 * 1024
# The test app's MAX_UPLOAD_MB, so that "too large" costs a megabyte, not ten.
LIMIT = 1 * MB


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Uploads (hence identity documents) limited to 1 MB."""
    return replace(settings, max_upload_mb=1)


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
    assert match, page
    return match.group(1)


def _path(url: str) -> str:
    return url.removeprefix("http://testserver")


def stored_documents(settings: Settings) -> list[Path]:
    """Every file under UPLOAD_DIR (documents and anything else written there)."""
    root = Path(settings.upload_dir)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def _user_row(db: Any, public_id: str) -> User:
    async with db() as session:
        return (await session.scalars(select(User).where(User.public_id == public_id))).one()


async def _open_page(client: httpx.AsyncClient, api_key: str, payload: Any = None) -> Any:
    """A new creditor, its onboarding path and the CSRF token of its page."""
    body = await create_user(client, api_key, payload or {"email": "new@x.test"})
    path = _path(body["onboarding_url"])
    page = await client.get(path)
    assert page.status_code == 200
    return body, path, _csrf(page.text)


def _multipart(
    token: str, document: tuple[str, bytes, str] | None, **overrides: str
) -> dict[str, Any]:
    data = {**ONBOARDING_FORM, "csrf_token": token, **overrides}
    files = {FIELD: document} if document is not None else {FIELD: ("", b"", "")}
    return {"data": data, "files": files}


USER_QUERY = """query($id: ID!) {
  user(id: $id) {
    status
    stripeAccountStatus
    requirements { currentlyDue eventuallyDue pastDue }
  }
}"""


async def test_page_offers_a_file_input_in_a_multipart_form(
    client: httpx.AsyncClient, make_platform: Any
) -> None:
    acme = await make_platform()
    body = await create_user(client, acme.api_key, {"email": "new@x.test"})
    page = await client.get(_path(body["onboarding_url"]))
    assert 'enctype="multipart/form-data"' in page.text
    assert f'<input type="file" id="{FIELD}" name="{FIELD}"' in page.text
    assert "PDF, JPEG or PNG, at most 1 MB" in page.text


@pytest.mark.parametrize(
    ("content", "client_name", "declared", "extension"),
    [
        (PDF, "passport.pdf", "application/pdf", "pdf"),
        # The bytes decide, never the name or the declared type.
        (JPEG, "../../../../etc/passwd.pdf", "text/plain", "jpg"),
        (PNG, "scan.pdf", "application/pdf", "png"),
    ],
    ids=["pdf", "jpeg-named-like-a-path", "png-named-pdf"],
)
async def test_document_on_the_page_completes_requirements_and_enables_payouts(
    client: httpx.AsyncClient,
    make_platform: Any,
    db: Any,
    settings: Settings,
    content: bytes,
    client_name: str,
    declared: str,
    extension: str,
) -> None:
    acme = await make_platform()
    body, path, token = await _open_page(client, acme.api_key)
    uid = body["id"]
    saved = await client.post(path, **_multipart(token, (client_name, content, declared)))
    assert saved.status_code == 200, saved.text
    assert "ready" in saved.text

    headers = bearer(acme.api_key)
    requirements = await client.get(f"/v1/users/{uid}/requirements", headers=headers)
    assert requirements.json() == {"currently_due": [], "eventually_due": [], "past_due": []}
    status = await client.get(f"/v1/users/{uid}/onboarding-status", headers=headers)
    assert status.json() == {
        "user_id": uid,
        "status": "active",
        "kyb_status": "verified",
        "stripe_account_status": "enabled",
        "requirements": [],
    }
    graph = await gql(client, USER_QUERY, {"id": uid}, headers)
    assert graph["data"]["user"] == {
        "status": "active",
        "stripeAccountStatus": "enabled",
        "requirements": {"currentlyDue": [], "eventuallyDue": [], "pastDue": []},
    }

    row = await _user_row(db, uid)
    reference = row.representative_document
    assert reference is not None
    assert re.fullmatch(rf"identity-documents/[0-9a-f]{{32}}\.{extension}", reference)
    files = stored_documents(settings)
    assert files == [Path(settings.upload_dir) / reference]
    assert files[0].read_bytes() == content
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    # A reference only: never served back on any face.
    user_json = await client.get(f"/v1/users/{uid}", headers=headers)
    for response in (user_json, requirements, status):
        assert reference not in response.text
        assert "identity-documents" not in response.text
    async with db() as session:
        events = (await session.scalars(select(Event).where(Event.type == "user.updated"))).all()
    assert [e.data["previous_attributes"]["status"] for e in events] == ["pending_onboarding"]


async def test_document_without_iban_leaves_the_payout_account_none(
    client: httpx.AsyncClient, make_platform: Any, db: Any
) -> None:
    acme = await make_platform()
    body, path, token = await _open_page(client, acme.api_key)
    saved = await client.post(
        path, **_multipart(token, ("id.pdf", PDF, "application/pdf"), **{"bank_account.iban": ""})
    )
    assert saved.status_code == 200, saved.text
    headers = bearer(acme.api_key)
    reqs = await client.get(f"/v1/users/{body['id']}/requirements", headers=headers)
    assert reqs.json()["eventually_due"] == ["bank_account.iban"]
    status = await client.get(f"/v1/users/{body['id']}/onboarding-status", headers=headers)
    assert status.json()["stripe_account_status"] == "none"
    assert (await _user_row(db, body["id"])).representative_document


async def test_set_password_page_takes_the_document_too(
    client: httpx.AsyncClient, make_platform: Any, db: Any, settings: Settings
) -> None:
    acme = await make_platform()
    body, path, token = await _open_page(client, acme.api_key, complete_user())
    page = await client.get(path)
    assert "Choose your password" in page.text
    assert f'name="{FIELD}"' in page.text
    saved = await client.post(
        path,
        data={
            "csrf_token": token,
            "password": "a long enough password",
            "password_confirmation": "a long enough password",
        },
        files={FIELD: ("id.png", PNG, "image/png")},
    )
    assert saved.status_code == 200, saved.text
    reqs = await client.get(f"/v1/users/{body['id']}/requirements", headers=bearer(acme.api_key))
    assert reqs.json()["eventually_due"] == ["bank_account.iban"]
    row = await _user_row(db, body["id"])
    assert row.password_hash
    assert row.representative_document
    assert len(stored_documents(settings)) == 1


async def test_an_empty_file_input_is_no_document(
    client: httpx.AsyncClient, make_platform: Any, db: Any, settings: Settings
) -> None:
    acme = await make_platform()
    body, path, token = await _open_page(client, acme.api_key)
    assert f'name="{FIELD}"' in (await client.get(path)).text
    # What a browser sends for a file input left alone: a part with no name and no bytes.
    saved = await client.post(path, **_multipart(token, None))
    assert saved.status_code == 200, saved.text
    reqs = await client.get(f"/v1/users/{body['id']}/requirements", headers=bearer(acme.api_key))
    assert reqs.json()["eventually_due"] == ["representative.identity_document"]
    status = await client.get(
        f"/v1/users/{body['id']}/onboarding-status", headers=bearer(acme.api_key)
    )
    assert status.json()["stripe_account_status"] == "pending"
    assert (await _user_row(db, body["id"])).representative_document is None
    assert stored_documents(settings) == []


async def _assert_nothing_written(
    client: httpx.AsyncClient, db: Any, settings: Settings, uid: str, path: str
) -> None:
    row = await _user_row(db, uid)
    assert row.representative_document is None
    assert row.status == "pending_onboarding"
    assert row.password_hash is None
    assert stored_documents(settings) == []
    # A refused form leaves the link usable.
    assert (await client.get(path)).status_code == 200


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            ("id.pdf", b"GIF89a\x01\x00\x01\x00" + b"\x00" * 32, "application/pdf"),
            "PDF, JPEG or PNG",
        ),
        (("id.pdf", b"<script>alert(1)</script>", "application/pdf"), "PDF, JPEG or PNG"),
        (("id.pdf", b"", "application/pdf"), "empty"),
        (("big.pdf", b"%PDF-" + b"0" * LIMIT, "application/pdf"), "maximum size is 1 MB"),
    ],
    ids=["gif", "text", "empty", "over-the-limit"],
)
async def test_bad_document_is_shown_at_its_field_and_nothing_is_written(
    client: httpx.AsyncClient,
    make_platform: Any,
    db: Any,
    settings: Settings,
    document: tuple[str, bytes, str],
    message: str,
) -> None:
    acme = await make_platform()
    body, path, token = await _open_page(client, acme.api_key)
    refused = await client.post(path, **_multipart(token, document))
    assert refused.status_code == 400, refused.text
    assert "Please correct the fields marked below." in refused.text
    error = field_error(refused.text, FIELD)
    assert error is not None, refused.text
    assert message in error
    await _assert_nothing_written(client, db, settings, body["id"], path)


def _raw_multipart(fields: dict[str, str], filename: bytes, content: bytes) -> bytes:
    """A multipart body written by hand: httpx would percent-encode a NUL in a filename."""
    parts = [
        f'--BND\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--BND\r\nContent-Disposition: form-data; name="{FIELD}"; filename="'.encode()
        + filename
        + b'"\r\nContent-Type: application/pdf\r\n\r\n'
        + content
        + b"\r\n"
    )
    return b"".join(parts) + b"--BND--\r\n"


async def test_a_nul_in_the_file_name_is_refused_at_its_field(
    client: httpx.AsyncClient, make_platform: Any, db: Any, settings: Settings
) -> None:
    acme = await make_platform()
    body, path, token = await _open_page(client, acme.api_key)
    refused = await client.post(
        path,
        content=_raw_multipart({**ONBOARDING_FORM, "csrf_token": token}, b"id\x00.pdf", PDF),
        headers={"content-type": "multipart/form-data; boundary=BND"},
    )
    assert refused.status_code == 400, refused.text
    assert field_error(refused.text, FIELD) == NUL_MESSAGE
    await _assert_nothing_written(client, db, settings, body["id"], path)


async def test_bad_document_is_listed_with_the_other_errors(
    client: httpx.AsyncClient, make_platform: Any, db: Any, settings: Settings
) -> None:
    acme = await make_platform()
    body, path, token = await _open_page(client, acme.api_key)
    refused = await client.post(
        path,
        **_multipart(
            token, ("id.pdf", b"MZ\x90\x00", "application/pdf"), **{"bank_account.iban": "FR00"}
        ),
    )
    assert refused.status_code == 400
    assert field_error(refused.text, "bank_account.iban") == "The IBAN is invalid."
    assert field_error(refused.text, FIELD) == identity_documents.WRONG_TYPE
    # A valid document on an otherwise refused form is not kept either.
    again = await client.post(
        path, **_multipart(token, ("id.pdf", PDF, "application/pdf"), **{"password": "short"})
    )
    assert again.status_code == 400
    await _assert_nothing_written(client, db, settings, body["id"], path)


async def test_a_document_sent_without_multipart_is_refused_at_its_field(
    client: httpx.AsyncClient, make_platform: Any, db: Any, settings: Settings
) -> None:
    acme = await make_platform()
    body, path, token = await _open_page(client, acme.api_key)
    refused = await client.post(
        path, data={**ONBOARDING_FORM, "csrf_token": token, FIELD: "passport.pdf"}
    )
    assert refused.status_code == 400
    assert field_error(refused.text, FIELD) == identity_documents.NOT_A_FILE
    await _assert_nothing_written(client, db, settings, body["id"], path)


async def test_an_unreadable_multipart_body_is_refused_on_the_page(
    client: httpx.AsyncClient, make_platform: Any, db: Any, settings: Settings
) -> None:
    acme = await make_platform()
    body, path, _token = await _open_page(client, acme.api_key)
    broken = await client.post(
        path,
        content=b"--b\r\nContent-Disposition: form-data\r\n\r\nno name\r\n--b--\r\n",
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert broken.status_code == 400
    assert field_error(broken.text, FIELD) is not None
    two_files = await client.post(
        path,
        data={**ONBOARDING_FORM, "csrf_token": _token},
        files=[(FIELD, ("a.pdf", PDF, "application/pdf")), ("other", ("b.pdf", PDF, "x/y"))],
    )
    assert two_files.status_code == 400
    assert field_error(two_files.text, FIELD) is not None
    await _assert_nothing_written(client, db, settings, body["id"], path)


async def test_a_form_over_the_limit_gets_the_page_and_is_not_read_past_it(
    client: httpx.AsyncClient, make_platform: Any, db: Any, settings: Settings
) -> None:
    acme = await make_platform()
    body, path, token = await _open_page(client, acme.api_key)
    boundary = "xyzzy"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="{FIELD}"; '
        'filename="big.pdf"\r\nContent-Type: application/pdf\r\n\r\n%PDF-'
    ).encode()
    chunk = b"0" * (64 * 1024)
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        yield head
        for _ in range(5 * MB // len(chunk)):
            sent += len(chunk)
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    chunked = await client.post(path, content=endless(), headers=headers)
    assert chunked.status_code == 413
    assert chunked.headers["content-type"].startswith("text/html")
    assert "maximum size is 1 MB" in (field_error(chunked.text, FIELD) or "")
    # Counted as it arrived: refused at the chunk that crossed the limit and framing.
    assert sent <= LIMIT + 64 * 1024 + len(chunk)
    await _assert_nothing_written(client, db, settings, body["id"], path)


async def _raw_post(app: Any, path: str, headers: dict[str, str], cookie: str | None) -> Any:
    """POST to the app with a body it must never ask for; how many times it asked."""
    asked = 0

    async def receive() -> dict[str, Any]:
        nonlocal asked
        asked += 1
        return {"type": "http.request", "body": b"x" * 1024, "more_body": True}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"host", b"testserver"))
    if cookie:
        raw.append((b"cookie", cookie.encode()))
    scope = post_scope(path, raw)
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    text = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], text.decode(), asked


async def test_nothing_is_read_before_the_link_and_its_limit_are_known(
    app: Any, client: httpx.AsyncClient, make_platform: Any, db: Any, settings: Settings
) -> None:
    acme = await make_platform()
    body, path, _token = await _open_page(client, acme.api_key)
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    multipart = {"content-type": "multipart/form-data; boundary=b"}
    # A declared body over the limit: the page answers with its form, and reads nothing.
    status, text, asked = await _raw_post(
        app, path, {**multipart, "content-length": str(20 * MB)}, cookie
    )
    assert (status, asked) == (413, 0)
    assert "maximum size is 1 MB" in (field_error(text, FIELD) or "")
    # An unknown link, or no CSRF cookie: refused before the body.
    status, text, asked = await _raw_post(
        app, "/onboarding/not-a-token", {**multipart, "content-length": "2048"}, cookie
    )
    assert (status, asked) == (404, 0)
    status, text, asked = await _raw_post(app, path, {**multipart, "content-length": "2048"}, None)
    assert (status, asked) == (403, 0)
    await _assert_nothing_written(client, db, settings, body["id"], path)


async def test_a_used_link_or_another_users_form_stores_nothing(
    app: Any, client: httpx.AsyncClient, make_platform: Any, db: Any, settings: Settings
) -> None:
    acme = await make_platform()
    first, first_path, first_token = await _open_page(client, acme.api_key)
    done = await client.post(first_path, **_multipart(first_token, None))
    assert done.status_code == 200
    # The link is spent: a document sent to it is never read, nor stored.
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    status, _text, asked = await _raw_post(
        app,
        first_path,
        {"content-type": "multipart/form-data; boundary=b", "content-length": "4096"},
        cookie,
    )
    assert (status, asked) == (404, 0)
    late = await client.post(first_path, **_multipart(first_token, ("id.pdf", PDF, "x/y")))
    assert late.status_code == 404
    assert (await _user_row(db, first["id"])).representative_document is None

    # Another creditor's page: its CSRF token is bound to its own link, not this one.
    other = await create_user(client, acme.api_key, {"email": "other@x.test"})
    other_path = _path(other["onboarding_url"])
    foreign = await client.post(
        other_path, **_multipart(first_token, ("id.pdf", PDF, "application/pdf"))
    )
    assert foreign.status_code == 403
    assert stored_documents(settings) == []
    row = await _user_row(db, other["id"])
    assert row.representative_document is None
    assert row.password_hash is None


async def test_concurrent_submissions_keep_one_document(
    client: httpx.AsyncClient, make_platform: Any, db: Any, settings: Settings
) -> None:
    acme = await make_platform()
    body, path, token = await _open_page(client, acme.api_key)
    answers = await asyncio.gather(
        *(
            client.post(path, **_multipart(token, (f"{n}.pdf", PDF + bytes([n]), "a/b")))
            for n in range(3)
        )
    )
    assert sorted(a.status_code for a in answers) == [200, 404, 404]
    reference = (await _user_row(db, body["id"])).representative_document
    # The submissions that lost the link kept no copy behind.
    assert stored_documents(settings) == [Path(settings.upload_dir) / str(reference)]


def test_the_limit_is_ten_megabytes_within_max_upload_mb() -> None:
    assert identity_documents.max_bytes(50 * MB) == 10 * MB
    assert identity_documents.max_bytes(2 * MB) == 2 * MB
    assert [identity_documents.kind_of(b) for b in (b"%PDF-1", b"\xff\xd8\xff", b"GIF8")] == [
        identity_documents.KINDS[0],
        identity_documents.KINDS[1],
        None,
    ]


async def test_a_form_refused_for_another_field_asks_for_the_document_again(
    client: httpx.AsyncClient, make_platform: Any, settings: Settings
) -> None:
    # Nothing is kept of a refused form, and a browser does not refill a file input: the page
    # came back without a word about the document, and the corrected form went without it.
    acme = await make_platform()
    _body, path, token = await _open_page(client, acme.api_key)
    refused = await client.post(
        path,
        **_multipart(token, ("id.pdf", PDF, "application/pdf"), password_confirmation="other"),
    )
    assert refused.status_code == 400
    assert field_error(refused.text, FIELD) == (
        "Nothing was saved: choose the document again before sending the form (a browser does "
        "not keep a file when the form comes back)."
    )
    assert stored_documents(settings) == []
    # Without a document chosen, nothing is said of it.
    bare = await client.post(
        path, **_multipart(_csrf(refused.text), None, password_confirmation="other")
    )
    assert bare.status_code == 400
    assert field_error(bare.text, FIELD) is None
