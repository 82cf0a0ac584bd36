"""Extraction under tight limits: a per-file time limit, and a machine without Tesseract."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import httpx
import pytest

from debtgraph.domain.extraction.models import ExtractionResult
from debtgraph.settings import Settings
from tests.extraction import bad_pdfs
from tests.extraction.corpus import corpus, pdf_of
from tests.integration.cleavr_support import bearer, count
from tests.integration.test_extraction import Tenant, ocr, tenant


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Two seconds per file, and no Tesseract to be found."""
    return dataclasses.replace(
        settings, extraction_timeout_seconds=2.0, tesseract_cmd="/nonexistent/tesseract"
    )


@pytest.fixture
async def acme(make_platform: Any, client: httpx.AsyncClient) -> Tenant:
    """Acme and its creditor."""
    return await tenant(make_platform, client)


async def test_a_pathological_pdf_is_a_400_at_the_limit_and_blocks_nothing(
    client: httpx.AsyncClient, acme: Any, db: Any
) -> None:
    task = asyncio.create_task(
        ocr(client, bearer(acme.api_key), acme.uid, bad_pdfs.slow_to_parse())
    )
    await asyncio.sleep(0.3)
    other = await client.get(f"/v1/users/{acme.uid}", headers=bearer(acme.api_key))
    assert other.status_code == 200
    assert not task.done()  # still parsing in its child process, while the API answered
    response = await task
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "pdf_too_complex"
    assert response.json()["error"]["field"] == "file"
    assert await count(db, ExtractionResult) == 0


async def test_no_text_and_no_tesseract_is_a_result_with_no_text_layer(
    client: httpx.AsyncClient, acme: Any
) -> None:
    scanned = next(s for s in corpus() if s.scanned)
    response = await ocr(client, bearer(acme.api_key), acme.uid, pdf_of(scanned))
    assert response.status_code == 200, response.text
    body = response.json()
    assert [w["code"] for w in body["warnings"]] == ["no_text_layer"]
    assert body["warnings"][0]["field"] is None
    assert "invoice.numbers" in body["missing_fields"]
    assert body["confidence"] == 0
    assert body["data"]["user_id"] == acme.uid
