"""What an outside attacker found in minutes (review of this session), each refused as a client
error in its face's shape: no 500, no "Unexpected error.", no ERROR with a trace, nothing written.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from debtgraph.domain.debtors.models import Upload
from debtgraph.domain.receivables.models import Receivable
from tests.conftest import gql
from tests.integration.cleavr_support import bearer, count, create_user
from tests.integration.test_nul_both_faces import CREATE, _graphql_input


def _errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


@pytest.mark.parametrize(
    ("amount", "code", "message"),
    [
        # Its cents rounded to 0 in the decimal context: stored as a 0.00 receivable.
        ("1e-999999999", "invalid_amount", "invoice.amount must have at most 2 decimal places."),
        # abs() overflowed the decimal context: "Unexpected error." and a trace.
        ("1e999999999", "out_of_range", "invoice.amount must not exceed 9999999999.99."),
        ("-1e999999999", "out_of_range", "invoice.amount must not exceed 9999999999.99."),
        ("1.0000000000000000000000000000001", "invalid_amount", None),
    ],
)
async def test_extreme_decimal_amounts_are_refused_not_rounded_or_overflowed(
    client: httpx.AsyncClient,
    make_platform: Any,
    db: Any,
    caplog: pytest.LogCaptureFixture,
    amount: str,
    code: str,
    message: str | None,
) -> None:
    acme = await make_platform()
    headers = bearer(acme.api_key)
    uid = (await create_user(client, acme.api_key))["id"]
    given = _graphql_input(uid, "Consulting")
    given["invoice"].update(amount=amount, amountBeforeTax=None, taxAmount=None)
    body = await gql(client, CREATE, {"i": given}, headers)
    assert body["data"]["receivableCreate"]["receivable"] is None, body
    [error] = body["data"]["receivableCreate"]["userErrors"]
    assert (error["field"], error["code"]) == ("invoice.amount", code)
    if message is not None:
        assert error["message"] == message
    assert await count(db, Receivable) == 0
    quote = await gql(
        client,
        'query($a: Decimal!) { commissionQuote(amount: $a, dueDate: "2026-01-01") { rate } }',
        {"a": amount},
        headers,
    )
    [refusal] = quote["errors"]
    assert refusal["extensions"]["code"] == "BAD_USER_INPUT", quote
    assert [e["code"] for e in refusal["extensions"]["errors"]] == [code]
    assert _errors_logged(caplog) == []


def _part(name: str, value: bytes, filename: bytes | None = None) -> bytes:
    disposition = f'Content-Disposition: form-data; name="{name}"'.encode()
    if filename is not None:
        disposition += b'; filename="' + filename + b'"\r\nContent-Type: text/csv'
    return b"--BND\r\n" + disposition + b"\r\n\r\n" + value + b"\r\n"


CSV = b"first_name,last_name,iban,amount\nMaria,Rodriguez,ES9121000418450200051332,150.00\n"
MULTIPART = {"Content-Type": "multipart/form-data; boundary=BND"}


async def test_a_nul_in_an_uploaded_file_name_is_refused_by_both_faces(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Any,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Raw bodies: httpx would percent-encode the NUL of a filename it writes itself.
    name = b"a\x00b.csv"
    headers = {**admin_headers, **MULTIPART}
    rest = await client.post(
        "/api/admin/uploads", content=_part("file", CSV, name) + b"--BND--\r\n", headers=headers
    )
    assert rest.status_code == 422, rest.text
    assert rest.json()["errors"] == {"file": ["Text must not contain the NUL character (\\u0000)."]}
    operations = (
        b'{"query": "mutation($i: UploadCreateInput!) { uploadCreate(input: $i) { upload { id }'
        b' userErrors { field code message } } }", "variables": {"i": {"file": null}}}'
    )
    body = (
        _part("operations", operations)
        + _part("map", b'{"0": ["variables.i.file"]}')
        + _part("0", CSV, name)
        + b"--BND--\r\n"
    )
    graph = (await client.post("/graphql", content=body, headers=headers)).json()
    payload = graph["data"]["uploadCreate"]
    assert payload["upload"] is None, graph
    assert payload["userErrors"] == [
        {
            "field": "file",
            "code": "invalid_character",
            "message": "Text must not contain the NUL character (\\u0000).",
        }
    ]
    assert await count(db, Upload) == 0
    assert await asyncio.to_thread(lambda: list(Path(settings.upload_dir).glob("*"))) == []
    assert _errors_logged(caplog) == []
