"""A connected world of every node type, PARENTS of each kind with two children per edge.

Rows go straight into the database (the faces that create them are tested elsewhere), except
the creditors, which come through ``POST /v1/users`` so that the platform's reach over them is
the real one. Used by the statement-count table, which compares 1 parent with all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select

from debtgraph.domain.core.outbox import Event
from debtgraph.domain.creditors.models import User
from debtgraph.domain.debtors.models import BlacklistedIban, Debtor, Upload
from debtgraph.domain.extraction.models import ExtractionResult
from debtgraph.domain.payments.models import BillingAttempt, VopLog
from debtgraph.domain.receivables.models import Contact, Evidence, Receivable, ReceivableEvent
from debtgraph.domain.webhooks.models import Webhook, WebhookDelivery, WebhookDeliveryAttempt
from tests.integration.cleavr_support import bearer, complete_user, create_user

PARENTS = 50
CHILDREN = 2


@dataclass
class GraphWorld:
    """Headers of the two principals and the Relay ids of the parents not behind a root list."""

    operator: dict[str, str]
    platform: dict[str, str]
    user_ids: list[str] = field(default_factory=list)  # usr_… of the creditors
    debtor_ids: list[int] = field(default_factory=list)


async def arrange(
    client: httpx.AsyncClient,
    db: Any,
    clock: Any,
    make_platform: Any,
    operator: dict[str, str],
    parents: int = PARENTS,
) -> GraphWorld:
    """The world: ``parents`` of each kind, each with CHILDREN children on each of its edges."""
    now = clock.now()
    acme = await make_platform("Graph world", redirect="https://graph-world.test/cb")
    world = GraphWorld(operator=operator, platform=bearer(acme.api_key))
    for n in range(parents):
        user = await create_user(client, acme.api_key, complete_user(f"c{n}@graph-world.test"))
        world.user_ids.append(user["id"])
    async with db() as session:
        users = (
            await session.scalars(select(User).where(User.public_id.in_(world.user_ids)))
        ).all()
        # A delivery per (webhook, event): one event per delivery of each webhook.
        events = [
            Event(
                public_id=f"evt_gw_{c}",
                type="receivable.created",
                object_type="receivable",
                object_id=f"rcv_gw_{c}",
                platform_id=acme.platform.id,
                data={},
                created_at=now,
            )
            for c in range(CHILDREN)
        ]
        session.add_all(events)
        for n, user in enumerate(users):
            for c in range(CHILDREN):
                session.add(
                    ExtractionResult(
                        public_id=f"ext_gw_{n}_{c}",
                        user_id=user.id,
                        platform_id=acme.platform.id,
                        created_at=now,
                    )
                )
            receivable = Receivable(
                public_id=f"rcv_gw_{n}",
                user_id=user.id,
                platform_id=acme.platform.id,
                invoice_numbers=[f"INV-{n}"],
                issue_date=date(2026, 9, 1),
                due_date=date(2026, 10, 1),
                amount=Decimal("100.00"),
                debtor_company_name=f"Debtor {n}",
                debtor_name_key=f"debtor {n}",
                created_at=now,
                updated_at=now,
            )
            webhook = Webhook(
                public_id=f"wh_gw_{n}",
                platform_id=acme.platform.id,
                user_id=user.id,
                url="https://hooks.graph-world.test/",
                events=["*"],
                secret_encrypted="not used here",
                created_at=now,
            )
            session.add_all([receivable, webhook])
            await session.flush()
            for c in range(CHILDREN):
                key = f"{n}_{c}"
                session.add_all(
                    [
                        Contact(
                            public_id=f"ctc_gw_{key}",
                            receivable_id=receivable.id,
                            email=f"c{key}@debtor.test",
                            created_at=now,
                        ),
                        ReceivableEvent(
                            public_id=f"rev_gw_{key}",
                            receivable_id=receivable.id,
                            action="created",
                            actor_type="platform",
                            created_at=now,
                        ),
                        Evidence(
                            public_id=f"evd_gw_{key}",
                            receivable_id=receivable.id,
                            documents=[],
                            created_at=now,
                        ),
                    ]
                )
                delivery = WebhookDelivery(
                    public_id=f"whd_gw_{key}",
                    webhook_id=webhook.id,
                    event_id=events[c].id,
                    created_at=now,
                    updated_at=now,
                )
                session.add(delivery)
                await session.flush()
                session.add_all(
                    WebhookDeliveryAttempt(
                        delivery_id=delivery.id,
                        attempt_number=a + 1,
                        status_code=500,
                        succeeded=False,
                        created_at=now,
                    )
                    for a in range(CHILDREN)
                )
        for n in range(parents):
            upload = Upload(
                filename=f"gw{n}.csv",
                original_filename=f"gw{n}.csv",
                file_size=1,
                mime_type="text/csv",
                created_at=now - timedelta(seconds=parents - n),
                updated_at=now,
            )
            session.add(upload)
            session.add(BlacklistedIban(iban=f"DE{n:020d}", created_at=now))
            await session.flush()
            for r in range(CHILDREN):
                debtor = Debtor(
                    upload_id=upload.id,
                    row_number=r + 2,
                    raw_data={},
                    first_name=f"d{n}-{r}",
                    amount=Decimal("10.00"),
                    country="ES",
                    validation_status="valid",
                    created_at=now,
                    updated_at=now,
                )
                session.add(debtor)
                await session.flush()
                world.debtor_ids.append(debtor.id)
                for c in range(CHILDREN):
                    session.add_all(
                        [
                            VopLog(
                                debtor_id=debtor.id,
                                upload_id=upload.id,
                                score_label="high",
                                result="verified",
                                vop_score=90,
                                created_at=now,
                            ),
                            BillingAttempt(
                                debtor_id=debtor.id,
                                upload_id=upload.id,
                                transaction_id=f"TXN-GW-{debtor.id}-{c}",
                                attempt_number=c + 1,
                                amount=Decimal("10.00"),
                                created_at=now,
                                updated_at=now,
                            ),
                        ]
                    )
        await session.commit()
    return world
