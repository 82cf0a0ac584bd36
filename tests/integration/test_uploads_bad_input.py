"""Every kind of bad upload answers 4xx (never 500) and leaves no upload or debtor behind,
and awkward but valid CSV (BOM, Windows-1252, `;`, quoted newlines…) is read right."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from debtgraph.domain.debtors.models import Debtor
from tests.integration.uploads_support import HEADER, counts, upload

VALID = "Ana,Lopez,ES9121000418450200051332,150.00,Madrid,28001,Calle Mayor 1,ES,a@x.es,x"


async def _rejected(response: httpx.Response, message: str, db: Any) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["errors"]["file"] == [message]
    assert body["message"] == message
    assert await counts(db) == (0, 0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The file is empty."),
        (b"   \n\n", "The file is empty."),
        (HEADER.encode() + b"\n", "The file contains no data rows."),
        (
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 50,
            "The file is not a CSV file (binary content).",
        ),
        (
            b"Dear team,\nplease find the list attached\n",
            "The file is not a CSV file: its header has no columns separated by a comma, "
            "semicolon or tab.",
        ),
    ],
    ids=["empty", "blank", "headers-only", "binary", "not-a-csv"],
)
async def test_unreadable_files_are_422_with_the_reason(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Any,
    content: bytes,
    message: str,
) -> None:
    await _rejected(await upload(client, admin_headers, content), message, db)


async def test_missing_file_field_is_422(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any
) -> None:
    response = await client.post("/api/admin/uploads", data={"other": "x"}, headers=admin_headers)
    await _rejected(response, "The file field is required.", db)
    as_text = await client.post("/api/admin/uploads", data={"file": "abc"}, headers=admin_headers)
    await _rejected(as_text, "The file field must be a file.", db)
    as_json = await client.post("/api/admin/uploads", json={"file": "x"}, headers=admin_headers)
    await _rejected(as_json, "The file field is required.", db)


async def test_file_over_the_limit_is_422_before_it_is_read(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any, runtime: Any
) -> None:
    runtime.services.settings = dataclasses.replace(runtime.services.settings, max_upload_mb=1)
    big = (HEADER + "\n" + (VALID + "\n") * 20000).encode()
    assert len(big) > 1024 * 1024
    response = await upload(client, admin_headers, big)
    await _rejected(response, "The file is too large: the maximum size is 1 MB.", db)


async def _stored(db: Any) -> list[Debtor]:
    async with db() as session:
        return list((await session.scalars(select(Debtor).order_by(Debtor.row_number))).all())


async def test_bom_windows_1252_and_semicolons_with_european_amounts(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any
) -> None:
    bom = "\ufeffnombre;apellidos;IBAN;Importe;ciudad;cp;direccion\n" + (
        "José;Muñoz;es91 2100 0418 4502 0005 1332;1 234,56;Málaga;29001;Calle Larios 5\n"
    )
    assert (await upload(client, admin_headers, bom.encode("utf-8"))).status_code == 201
    cp1252 = "first_name;last_name;iban;amount;city;postcode;address\n" + (
        "Françoise;Müller;DE89370400440532013000;150,00;Köln;50667;Hohe Straße 1\n"
    )
    assert (await upload(client, admin_headers, cp1252.encode("cp1252"))).status_code == 201
    first, second = await _stored(db)
    assert first.first_name == "José"
    assert first.iban == "ES9121000418450200051332"
    assert first.amount == Decimal("1234.56")
    assert first.validation_status == "valid"
    assert first.raw_data["iban"] == "es91 2100 0418 4502 0005 1332"
    assert second.last_name == "Müller"
    assert second.city == "Köln"
    assert second.validation_status == "valid"


async def test_quoted_newlines_short_and_long_rows_and_amount_limits(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any
) -> None:
    content = "\n".join(
        [
            "first_name,last_name,iban,amount,city,postcode,address",
            'Ana,Lopez,ES9121000418450200051332,150.00,Madrid,28001,"Calle Mayor\n1"',
            "Luis,Perez,ES9121000418450200051332",
            "Eva,Gil,ES9121000418450200051332,-5,Madrid,28001,Calle Mayor 1,surplus,more",
            "Ion,Sanz,ES9121000418450200051332,50000.01,Madrid,28001,Calle Mayor 1",
        ]
    )
    response = await upload(client, admin_headers, content)
    assert response.status_code == 201
    meta = response.json()["meta"]
    assert meta["created"] == 1
    assert meta["failed"] == 3
    assert [(e["row"], e["message"]) for e in meta["errors"]] == [
        (3, "Amount is required"),
        (4, "Amount must be positive"),
        (5, "Amount must not exceed 50000"),
    ]
    quoted, short, long_row, large = await _stored(db)
    assert quoted.street == "Calle Mayor 1"
    assert short.validation_errors == [
        "Amount is required",
        "City is required",
        "Postal code is required",
        "Address is required",
    ]
    assert long_row.raw_data["_extra_1"] == "surplus"
    assert large.validation_errors == ["Amount must not exceed 50000"]


async def test_absurd_cells_are_stored_cut_to_fit_and_refused_by_validation(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any
) -> None:
    content = (
        "first_name,last_name,iban,amount,city,postcode,address\n"
        f"Ana,Lopez,{'DE89370400440532013000' * 3},99999999999999,{'M' * 300},28001,Calle 1\n"
    )
    response = await upload(client, admin_headers, content)
    assert response.status_code == 201
    (debtor,) = await _stored(db)
    assert debtor.validation_errors == [
        "IBAN is invalid",
        "Amount must not exceed 50000",
        "City must be between 2 and 100 characters",
    ]
    assert len(debtor.raw_data["city"]) == 300


async def test_unknown_ids_are_404(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    for path in (
        "/api/admin/uploads/999",
        "/api/admin/uploads/abc",
        "/api/admin/uploads/999/status",
        "/api/admin/uploads/999/debtors",
        "/api/admin/uploads/999/validation-stats",
        "/api/admin/debtors/999",
    ):
        response = await client.get(path, headers=admin_headers)
        assert response.status_code == 404, path
        assert response.json()["status"] == 404
        assert response.json()["message"].endswith("not found.")
    for path in ("/api/admin/uploads/999/validate", "/api/admin/debtors/999/validate"):
        assert (await client.post(path, headers=admin_headers)).status_code == 404
    put = await client.put("/api/admin/debtors/999", json={"raw_data": {}}, headers=admin_headers)
    assert put.status_code == 404


async def test_bad_list_filters_are_422(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    cases = {
        "/api/admin/uploads?status=done": "status",
        "/api/admin/uploads?per_page=500": "per_page",
        "/api/admin/debtors?status=nope": "status",
        "/api/admin/debtors?risk_class=extreme": "risk_class",
        "/api/admin/debtors?country=Spain": "country",
        "/api/admin/debtors?upload_id=x": "upload_id",
        "/api/admin/debtors?page=0": "page",
    }
    for path, field in cases.items():
        response = await client.get(path, headers=admin_headers)
        assert response.status_code == 422, path
        assert field in response.json()["errors"], path
