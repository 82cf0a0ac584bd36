"""The VOP phase through the HTTP provider: nothing invalid sent, failures, resumable job runs."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from debtgraph.domain.debtors.models import Debtor
from debtgraph.domain.payments.models import VopLog
from debtgraph.jobs.vop import check_upload_in_batches
from debtgraph.settings import Settings
from tests.integration.uploads_support import csv_text, upload
from tests.integration.vop_bank_support import Bank, running_bank


@pytest.fixture
def bank() -> Iterator[Bank]:
    with running_bank() as served:
        yield served


@pytest.fixture
def settings(settings: Settings, bank: Bank) -> Settings:
    """The app talks to the loopback VOP service, two requests per call."""
    return dataclasses.replace(
        settings,
        vop_provider="http",
        vop_provider_url=bank.url,
        vop_provider_batch=2,
        vop_provider_timeout_seconds=2,
    )


async def _counts(db: Any) -> tuple[int, int, int]:
    """(logs, distinct debtors logged, debtors still awaiting a check among those with an IBAN)."""
    async with db() as session:
        logs = await session.scalar(select(func.count()).select_from(VopLog))
        distinct = await session.scalar(select(func.count(func.distinct(VopLog.debtor_id))))
        awaiting = await session.scalar(
            select(func.count())
            .select_from(Debtor)
            .where(Debtor.iban.is_not(None), Debtor.risk_class.is_(None))
        )
    return int(logs or 0), int(distinct or 0), int(awaiting or 0)


async def test_an_invalid_iban_never_reaches_the_service(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any, bank: Bank
) -> None:
    response = await upload(client, admin_headers, csv_text(6, bad_every=3))
    assert response.status_code == 201
    assert "ES00INVALID" not in bank.asked_ibans
    assert len(bank.asked_ibans) == 4  # the valid rows, in batches of two
    assert [len(call) for call in bank.calls] == [2, 2]
    async with db() as session:
        rejected = (await session.scalars(select(VopLog).where(VopLog.result == "rejected"))).all()
    assert len(rejected) == 2
    assert all(log.iban_valid is False and log.vop_score == 0 for log in rejected)
    assert await _counts(db) == (6, 6, 0)


async def test_a_failing_service_leaves_debtors_unchecked_until_the_job(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any, bank: Bank, runtime: Any,
    drain: Any,
) -> None:  # fmt: skip
    bank.mode = "fail"
    response = await upload(client, admin_headers, csv_text(4))
    # The upload itself succeeds: validation does not depend on the VOP service.
    assert response.status_code == 201
    assert response.json()["meta"]["created"] == 4
    assert await _counts(db) == (0, 0, 4)
    stats = await client.get(
        f"/api/admin/uploads/{response.json()['data']['id']}/validation-stats",
        headers=admin_headers,
    )
    assert stats.json()["data"]["ready_for_sync"] == 0  # unchecked debtors are not billable
    await drain()  # the queued vop.check_upload fails too while the service is down
    assert await _counts(db) == (0, 0, 4)
    bank.mode = "ok"
    # The periodic sweep queues the upload again, and this time the checks are written.
    await runtime.services.jobs.enqueue("vop.resume")
    await drain()
    assert await _counts(db) == (4, 4, 0)


async def test_a_run_killed_midway_resumes_without_duplicate_logs(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any, bank: Bank, runtime: Any,
    drain: Any,
) -> None:  # fmt: skip
    bank.mode = "fail"
    response = await upload(client, admin_headers, csv_text(10))
    upload_id = response.json()["data"]["id"]
    await drain()  # the queued retry fails too while the service is down
    assert await _counts(db) == (0, 0, 10)
    bank.mode = "ok"
    bank.fail_after = len(bank.calls) + 2  # two calls (one batch of four) then the service dies
    checked = await check_upload_in_batches(runtime.services, upload_id, size=4)
    assert checked == 4
    assert await _counts(db) == (4, 4, 6)
    bank.fail_after = None
    assert await check_upload_in_batches(runtime.services, upload_id, size=4) == 6
    # A second complete run finds nothing to do.
    assert await check_upload_in_batches(runtime.services, upload_id, size=4) == 0
    assert await _counts(db) == (10, 10, 0)


async def test_two_concurrent_runs_log_each_check_once(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any, bank: Bank, runtime: Any,
    drain: Any,
) -> None:  # fmt: skip
    bank.mode = "fail"
    response = await upload(client, admin_headers, csv_text(40))
    upload_id = response.json()["data"]["id"]
    await drain()
    assert await _counts(db) == (0, 0, 40)
    bank.mode = "ok"
    services = runtime.services
    first, second = await asyncio.gather(
        check_upload_in_batches(services, upload_id, size=7),
        check_upload_in_batches(services, upload_id, size=7),
    )
    assert first + second == 40
    assert await _counts(db) == (40, 40, 0)


async def test_a_revalidated_debtor_is_checked_again(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Any, bank: Bank, runtime: Any
) -> None:
    response = await upload(client, admin_headers, csv_text(3))
    upload_id = response.json()["data"]["id"]
    async with db() as session:
        await session.execute(
            update(Debtor).where(Debtor.upload_id == upload_id).values(validation_status="pending")
        )
        await session.commit()
    validated = await client.post(f"/api/admin/uploads/{upload_id}/validate", headers=admin_headers)
    assert validated.status_code == 200
    # Already checked debtors keep their check: validation leaves the marker alone.
    assert await _counts(db) == (3, 3, 0)
