"""CSV limits and recognised columns (PRODUCT.md §12, issue 7), on REST and GraphQL alike:
refusals are 422s before anything is stored, even for files that would be queued."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from debtgraph.domain.debtors.models import Debtor, ValidationStatus
from debtgraph.server.app import Runtime
from tests.integration.uploads_support import HEADER, counts, csv_text, upload, valid_row

TOO_MANY = "Row {row} has more than 200 columns: a file may have at most 200."
GERMAN = (
    "Vorname,Nachname,IBAN,Betrag,Strasse,PLZ,Stadt\n"
    "Hans,Müller,DE89370400440532013000,150.00,Hauptstr. 1,10115,Berlin\n"
)
NOT_RECOGNISED = (
    "The file's columns are not recognised: expected first_name, last_name (or name), iban,"
    " amount, city, postcode and address, or an alias of them listed in the README;"
    " found vorname, nachname, iban, betrag, strasse, plz, stadt."
)
LONG_NOTE = "Field custom_field must not exceed 1000 characters"

CREATE = """mutation($input: UploadCreateInput!) { uploadCreate(input: $input) {
  upload { databaseId } queued created failed rowErrors { row message }
  unrecognizedColumns userErrors { field code message } } }"""


async def _graphql_upload(
    client: httpx.AsyncClient, headers: dict[str, str], content: bytes
) -> dict[str, Any]:
    operations = {"query": CREATE, "variables": {"input": {"file": None}}}
    response = await client.post(
        "/graphql",
        data={
            "operations": json.dumps(operations),
            "map": json.dumps({"0": ["variables.input.file"]}),
        },
        files={"0": ("list.csv", content, "text/csv")},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]["uploadCreate"]  # type: ignore[no-any-return]


def _stored_files(runtime: Runtime) -> list[Path]:
    uploads = Path(runtime.services.settings.upload_dir)
    return list(uploads.iterdir()) if uploads.exists() else []


async def _refused(response: httpx.Response, message: str, db: Any, runtime: Runtime) -> None:
    assert response.status_code == 422, response.text
    assert response.json() == {"message": message, "errors": {"file": [message]}}
    assert await counts(db) == (0, 0)
    assert _stored_files(runtime) == []


def _wide_row(cells: int) -> str:
    return ",".join(["x"] * cells)


@pytest.mark.parametrize(
    ("content", "row"),
    [
        (",".join(["name"] * 30_000) + "\n" + valid_row(0) + "\n", 1),
        (HEADER + ",c201" * 191 + "\n" + valid_row(0) + "\n", 1),
        (csv_text(5) + _wide_row(201) + "\n", 7),
        # Over 100 rows, so it would be queued: the whole file is still checked in the request.
        (csv_text(150) + _wide_row(300) + "\n", 152),
    ],
    ids=["30000-identical-headers", "201-headers", "wide-row", "wide-row-of-a-large-file"],
)
async def test_more_than_200_columns_is_422_naming_the_limit(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Any,
    runtime: Runtime,
    content: str,
    row: int,
) -> None:
    response = await upload(client, admin_headers, content)
    await _refused(response, TOO_MANY.format(row=row), db, runtime)


async def test_a_row_of_six_million_cells_is_422(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any, runtime: Runtime
) -> None:
    content = HEADER + "\n" + "x," * 6_000_000 + "\n"
    response = await upload(client, admin_headers, content)
    await _refused(response, TOO_MANY.format(row=2), db, runtime)


async def test_a_file_with_no_debtor_column_is_422_listing_expected_and_found(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any, runtime: Runtime
) -> None:
    response = await upload(client, admin_headers, GERMAN)
    await _refused(response, NOT_RECOGNISED, db, runtime)
    large = GERMAN + "\n".join([GERMAN.splitlines()[1]] * 150) + "\n"
    await _refused(await upload(client, admin_headers, large), NOT_RECOGNISED, db, runtime)


async def test_graphql_upload_create_refuses_the_same_files(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any
) -> None:
    wide = await _graphql_upload(client, admin_headers, (csv_text(3) + _wide_row(250)).encode())
    assert wide["upload"] is None
    assert wide["userErrors"] == [
        {"field": "file", "code": "too_many_columns", "message": TOO_MANY.format(row=5)}
    ]
    german = await _graphql_upload(client, admin_headers, GERMAN.encode())
    assert german["userErrors"] == [
        {"field": "file", "code": "unrecognized_columns", "message": NOT_RECOGNISED}
    ]
    assert await counts(db) == (0, 0)


async def test_unrecognised_columns_are_reported_in_meta_and_kept_in_raw_data(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any, drain: Any
) -> None:
    content = "Nombre,Apellidos,IBAN,Importe,Ciudad,CP,Dirección,Kundennummer,,Notiz\n" + (
        "José,Muñoz,ES9121000418450200051332,150,Málaga,29001,Calle Larios 5,K-17,x,hi\n"
    )
    small = await upload(client, admin_headers, content)
    assert small.status_code == 201, small.text
    assert small.json()["meta"]["unrecognized_columns"] == ["kundennummer", "_column_9", "notiz"]
    assert small.json()["meta"]["created"] == 1
    async with db() as session:
        debtor = await session.scalar(select(Debtor))
    assert debtor is not None
    assert debtor.raw_data["kundennummer"] == "K-17"
    assert debtor.raw_data["notiz"] == "hi"
    large = await upload(client, admin_headers, csv_text(120))
    assert large.status_code == 202
    assert large.json()["meta"]["unrecognized_columns"] == ["custom_field"]
    known = await _graphql_upload(client, admin_headers, csv_text(2).encode())
    assert known["unrecognizedColumns"] == ["custom_field"]
    await drain()


async def test_a_cell_over_1000_characters_fails_its_row(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any
) -> None:
    rows = [valid_row(0), valid_row(1), valid_row(2)]
    rows[1] = rows[1].rsplit(",", 1)[0] + "," + "n" * 1001
    rows[2] = rows[2].rsplit(",", 1)[0] + "," + "n" * 1000
    response = await upload(client, admin_headers, "\n".join([HEADER, *rows]) + "\n")
    assert response.status_code == 201, response.text
    meta = response.json()["meta"]
    assert (meta["created"], meta["failed"]) == (2, 1)
    assert [(e["row"], e["message"]) for e in meta["errors"]] == [(3, LONG_NOTE)]
    async with db() as session:
        debtor = await session.scalar(select(Debtor).where(Debtor.row_number == 3))
    assert debtor is not None
    assert debtor.validation_errors == [LONG_NOTE]
    assert len(debtor.raw_data["custom_field"]) == 1001
    # Validating the row again reads its raw columns, not only the fields cut to fit.
    again = await client.post(f"/api/admin/debtors/{debtor.id}/validate", headers=admin_headers)
    assert again.status_code == 200
    assert again.json()["data"]["validation_errors"] == [LONG_NOTE]
    async with db() as session:
        await session.execute(
            update(Debtor).values(validation_status=ValidationStatus.PENDING.value)
        )
        await session.commit()
    bulk = await client.post(
        f"/api/admin/uploads/{debtor.upload_id}/validate", headers=admin_headers
    )
    assert bulk.json()["data"] == {"total": 3, "valid": 2, "invalid": 1}
    async with db() as session:
        stored = await session.get(Debtor, debtor.id)
    assert stored is not None
    assert stored.validation_errors == [LONG_NOTE]


async def test_the_ingestion_job_fails_a_row_with_a_long_cell_too(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any, drain: Any
) -> None:
    content = csv_text(120) + valid_row(7).rsplit(",", 1)[0] + "," + "n" * 5000 + "\n"
    response = await upload(client, admin_headers, content)
    assert response.status_code == 202, response.text
    await drain()
    async with db() as session:
        debtor = await session.scalar(select(Debtor).where(Debtor.row_number == 122))
    assert debtor is not None
    assert debtor.validation_errors == [LONG_NOTE]
