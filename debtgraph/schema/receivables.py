"""Receivable, Contact, ReceivableEvent and Evidence nodes, with their operations."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator, Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

import strawberry
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from debtgraph.domain.receivables import changes as receivable_service
from debtgraph.domain.receivables.models import Contact as ContactModel
from debtgraph.domain.receivables.models import Evidence as EvidenceModel
from debtgraph.domain.receivables.models import Receivable as ReceivableModel
from debtgraph.domain.receivables.models import ReceivableEvent as ReceivableEventModel
from debtgraph.domain.receivables.models import ReceivableStatus as DomainReceivableStatus
from debtgraph.domain.receivables.status_machine import CancelReason as DomainCancelReason
from debtgraph.domain.receivables.status_machine import (
    PartialPaymentAction as DomainPartialPaymentAction,
)
from debtgraph.domain.receivables.status_machine import ReceivableAction
from debtgraph.resolvers import creditors, receivables
from debtgraph.resolvers.loaders import PageKey
from debtgraph.resolvers.pagination import IdRef, check_window
from debtgraph.schema.base import (
    Connection,
    UserError,
    attempt,
    ctx_of,
    id_ref,
    nodes_in_order,
    object_id,
    schema_type,
    to_connection,
)
from debtgraph.schema.live import nodes

ReceivableStatus = strawberry.enum(DomainReceivableStatus, description="Lifecycle of a receivable.")
CancelReason = strawberry.enum(DomainCancelReason, description="Why a creditor cancels recovery.")
PartialPaymentAction = strawberry.enum(
    DomainPartialPaymentAction, description="The creditor's decision after a partial payment."
)


@strawberry.type(description="A person at the debtor company.")
class Contact(relay.Node):
    id: relay.NodeID[str]
    first_name: str | None
    last_name: str | None
    email: str
    phone: str | None
    job_title: str | None
    level: int
    created_at: datetime
    receivable_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, m: ContactModel) -> Contact:
        """Shape a contact row."""
        return cls(
            id=m.public_id,
            first_name=m.first_name,
            last_name=m.last_name,
            email=m.email,
            phone=m.phone,
            job_title=m.job_title,
            level=m.level,
            created_at=m.created_at,
            receivable_id=m.receivable_id,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Contact | None]:
        ctx = ctx_of(info)
        return await nodes_in_order(
            node_ids,
            lambda ids: receivables.visible_children(ctx, ContactModel, ids),
            cls.from_model,
        )

    @strawberry.field(description="The receivable it belongs to.")
    async def receivable(self, info: Info) -> Receivable | None:
        model = await receivables.readable_receivable(ctx_of(info), self.receivable_id)
        return Receivable.from_model(model) if model else None


@strawberry.type(description="One entry of a receivable's history, with actor, reason and time.")
class ReceivableEvent(relay.Node):
    id: relay.NodeID[str]
    action: str
    from_status: str | None
    to_status: str | None
    actor_type: str
    actor_id: str | None
    reason: str | None
    data: JSON
    created_at: datetime
    receivable_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, m: ReceivableEventModel) -> ReceivableEvent:
        """Shape a history row."""
        return cls(
            id=m.public_id,
            action=m.action,
            from_status=m.from_status,
            to_status=m.to_status,
            actor_type=m.actor_type,
            actor_id=m.actor_id,
            reason=m.reason,
            data=m.data,
            created_at=m.created_at,
            receivable_id=m.receivable_id,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[ReceivableEvent | None]:
        ctx = ctx_of(info)
        return await nodes_in_order(
            node_ids,
            lambda ids: receivables.visible_children(ctx, ReceivableEventModel, ids),
            cls.from_model,
        )

    @strawberry.field(description="The receivable it belongs to.")
    async def receivable(self, info: Info) -> Receivable | None:
        model = await receivables.readable_receivable(ctx_of(info), self.receivable_id)
        return Receivable.from_model(model) if model else None


@strawberry.type(description="Documents and a statement submitted against a dispute.")
class Evidence(relay.Node):
    id: relay.NodeID[str]
    statement: str | None
    documents: JSON
    submitted_by: str | None
    created_at: datetime
    receivable_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, m: EvidenceModel) -> Evidence:
        """Shape an evidence row."""
        return cls(
            id=m.public_id,
            statement=m.statement,
            documents=m.documents,
            submitted_by=m.submitted_by,
            created_at=m.created_at,
            receivable_id=m.receivable_id,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Evidence | None]:
        ctx = ctx_of(info)
        return await nodes_in_order(
            node_ids,
            lambda ids: receivables.visible_children(ctx, EvidenceModel, ids),
            cls.from_model,
        )

    @strawberry.field(description="The receivable it belongs to.")
    async def receivable(self, info: Info) -> Receivable | None:
        model = await receivables.readable_receivable(ctx_of(info), self.receivable_id)
        return Receivable.from_model(model) if model else None


@strawberry.type(description="How far recovery has got.")
class RecoveryProgress:
    amount_recovered: Decimal
    amount_remaining: Decimal
    phase: str
    last_action: str | None
    next_action_at: datetime | None
    actions_count: int
    awaiting_decision: bool
    warnings: JSON


@strawberry.type(description="Commission fixed at submission.")
class Commission:
    rate: Decimal
    amount: Decimal
    net: Decimal


def _page_key(
    parent_id: int, first: int | None, after: str | None, last: int | None, before: str | None
) -> PageKey:
    return PageKey(parent_id, check_window(first, after, last, before))


@strawberry.type(description="An overdue invoice (or group of invoices) under recovery.")
class Receivable(relay.Node):
    id: relay.NodeID[str]
    status: ReceivableStatus
    amount: Decimal
    currency: str
    invoice_numbers: list[str]
    issue_date: date
    due_date: date
    service_description: str
    amount_before_tax: Decimal | None
    tax_amount: Decimal | None
    debtor_company_name: str
    debtor_company_type: str
    debtor_siret: str | None
    debtor_vat_number: str | None
    debtor_address: JSON | None
    metadata: JSON
    indemnity_due: Decimal
    commission: Commission
    cancel_reason: CancelReason | None
    cancel_notes: str | None
    created_at: datetime
    updated_at: datetime
    model: strawberry.Private[ReceivableModel]

    @classmethod
    def from_model(cls, m: ReceivableModel) -> Receivable:
        """Shape a receivable row."""
        commission = receivable_service.commission_of(m)
        return cls(
            id=m.public_id,
            status=ReceivableStatus(m.status),
            amount=m.amount,
            currency=m.currency,
            invoice_numbers=list(m.invoice_numbers),
            issue_date=m.issue_date,
            due_date=m.due_date,
            service_description=m.service_description,
            amount_before_tax=m.amount_before_tax,
            tax_amount=m.tax_amount,
            debtor_company_name=m.debtor_company_name,
            debtor_company_type=m.debtor_company_type,
            debtor_siret=m.debtor_siret,
            debtor_vat_number=m.debtor_vat_number,
            debtor_address=m.debtor_address,
            metadata=dict(m.metadata_ or {}),
            indemnity_due=receivable_service.indemnity_of(m),
            commission=Commission(
                rate=commission.rate, amount=commission.amount, net=commission.net
            ),
            cancel_reason=CancelReason(m.cancel_reason) if m.cancel_reason else None,
            cancel_notes=m.cancel_notes,
            created_at=m.created_at,
            updated_at=m.updated_at,
            model=m,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Receivable | None]:
        ctx = ctx_of(info)
        return await nodes_in_order(
            node_ids, lambda ids: receivables.visible_by_public_id(ctx, ids), cls.from_model
        )

    @strawberry.field(description="The creditor the receivable belongs to.")
    async def user(
        self, info: Info
    ) -> Annotated[User, strawberry.lazy("debtgraph.schema.creditors")] | None:  # noqa: F821
        # User is named lazily and built through the schema: schema.creditors imports this
        # module. users:read over this creditor, not only receivables:read (PRODUCT.md §1).
        model = await creditors.readable_user(ctx_of(info), self.model.user_id)
        return schema_type(info, "User").from_model(model) if model else None

    @strawberry.field(description="Amounts, phase, last and next action, warnings.")
    def recovery_progress(self, info: Info) -> RecoveryProgress:
        progress = receivable_service.recovery_progress(self.model, ctx_of(info).clock.now())
        return RecoveryProgress(
            amount_recovered=progress.amount_recovered,
            amount_remaining=progress.amount_remaining,
            phase=progress.phase,
            last_action=progress.last_action,
            next_action_at=progress.next_action_at,
            actions_count=progress.actions_count,
            awaiting_decision=progress.awaiting_decision,
            warnings=progress.warnings,
        )

    @strawberry.field(
        description="What the caller may do next, given the status, payments and its role."
    )
    def allowed_actions(self, info: Info) -> list[str]:
        return [a.value for a in receivables.allowed_actions(ctx_of(info), self.model)]

    @strawberry.field(description="Debtor contacts, newest first.")
    async def contacts(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Contact]:
        page = (
            await ctx_of(info)
            .loaders.pages(ContactModel.receivable_id)
            .load(_page_key(self.model.id, first, after, last, before))
        )
        return to_connection(page, Contact.from_model)

    @strawberry.field(description="History: every transition and action, newest first.")
    async def events(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[ReceivableEvent]:
        page = (
            await ctx_of(info)
            .loaders.pages(ReceivableEventModel.receivable_id)
            .load(_page_key(self.model.id, first, after, last, before))
        )
        return to_connection(page, ReceivableEvent.from_model)

    @strawberry.field(description="Evidence submitted against disputes, newest first.")
    async def evidence(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Evidence]:
        page = (
            await ctx_of(info)
            .loaders.pages(EvidenceModel.receivable_id)
            .load(_page_key(self.model.id, first, after, last, before))
        )
        return to_connection(page, Evidence.from_model)


# --- Inputs ----------------------------------------------------------------------------------


@strawberry.input
class AddressInput:
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    postal_code: str | None = None
    country: str | None = None


@strawberry.input
class ContactInput:
    email: str
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    job_title: str | None = None
    level: int | None = None


@strawberry.input
class InvoiceInput:
    numbers: list[str]
    issue_date: date
    due_date: date
    service_description: str
    amount: Decimal
    amount_before_tax: Decimal | None = None
    tax_amount: Decimal | None = None
    currency: str | None = None


@strawberry.input
class DebtorInput:
    company_name: str
    contacts: list[ContactInput]
    company_type: str | None = None
    siret: str | None = None
    vat_number: str | None = None
    address: AddressInput | None = None


@strawberry.input(description="Same fields and rules as POST /v1/receivables.")
class ReceivableCreateInput:
    user_id: strawberry.ID
    invoice: InvoiceInput
    debtor: DebtorInput
    metadata: JSON | None = None
    force_proceed: bool | None = None


@strawberry.input
class ReceivableUpdateInput:
    id: strawberry.ID
    metadata: JSON


@strawberry.input
class ReceivableCancelInput:
    id: strawberry.ID
    reason: CancelReason
    notes: str | None = None


@strawberry.input
class ReceivableContactAddInput:
    receivable_id: strawberry.ID
    contact: ContactInput


@strawberry.input
class EvidenceDocumentInput:
    file: str
    type: str | None = None
    description: str | None = None


@strawberry.input
class ReceivableEvidenceSubmitInput:
    id: strawberry.ID
    statement: str | None = None
    documents: list[EvidenceDocumentInput] | None = None


@strawberry.input
class ReceivablePartialPaymentInput:
    id: strawberry.ID
    action: PartialPaymentAction
    notes: str | None = None


@strawberry.input
class ReceivableIdInput:
    id: strawberry.ID


@strawberry.input
class ReceivableReasonInput:
    id: strawberry.ID
    reason: str | None = None


@strawberry.input
class ReceivablePaymentRecordInput:
    id: strawberry.ID
    amount: Decimal
    reference: str | None = None


@strawberry.type
class ReceivablePayload:
    receivable: Receivable | None
    user_errors: list[UserError]


@strawberry.type
class ContactPayload:
    contact: Contact | None
    receivable: Receivable | None
    user_errors: list[UserError]


@strawberry.type
class EvidencePayload:
    evidence: Evidence | None
    receivable: Receivable | None
    user_errors: list[UserError]


def _rid(value: str) -> IdRef:
    return id_ref(value, "Receivable")


def _receivable_payload(
    model: ReceivableModel | None, errors: list[UserError]
) -> ReceivablePayload:
    return ReceivablePayload(
        receivable=Receivable.from_model(model) if model else None, user_errors=errors
    )


# --- Root types --------------------------------------------------------------------------------


@strawberry.type
class ReceivableQuery:
    @strawberry.field(description="Receivables within reach, newest first.")
    async def receivables(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        status: ReceivableStatus | None = None,
        user_id: strawberry.ID | None = None,
    ) -> Connection[Receivable]:
        page = await receivables.list_receivables(
            ctx_of(info),
            user_id=id_ref(user_id, "User") if user_id else None,
            status=status.value if status else None,
            window=check_window(first, after, last, before),
        )
        return to_connection(page, Receivable.from_model)

    @strawberry.field(description="One receivable by its id or REST id (GET /v1/receivables/{id}).")
    async def receivable(self, info: Info, id: strawberry.ID) -> Receivable | None:
        return Receivable.from_model(await receivables.get(ctx_of(info), _rid(id)))


@strawberry.type
class ReceivableMutation:
    @strawberry.mutation(description="Submit a receivable (POST /v1/receivables).")
    async def receivable_create(
        self, info: Info, input: ReceivableCreateInput
    ) -> ReceivablePayload:
        # The typed input goes to the use case as it is; only its id is read first (either form).
        draft = dataclasses.replace(input, user_id=object_id(input.user_id, "User"))
        model, errors = await attempt(receivables.create(ctx_of(info), draft))
        return _receivable_payload(model, errors)

    @strawberry.mutation(description="Merge metadata (PATCH /v1/receivables/{id}).")
    async def receivable_update(
        self, info: Info, input: ReceivableUpdateInput
    ) -> ReceivablePayload:
        model, errors = await attempt(
            receivables.update_metadata(ctx_of(info), _rid(input.id), {"metadata": input.metadata})
        )
        return _receivable_payload(model, errors)

    @strawberry.mutation(description="Cancel recovery (POST /v1/receivables/{id}/cancel).")
    async def receivable_cancel(
        self, info: Info, input: ReceivableCancelInput
    ) -> ReceivablePayload:
        model, errors = await attempt(receivables.cancel(ctx_of(info), _rid(input.id), input))
        return _receivable_payload(model, errors)

    @strawberry.mutation(description="Add a debtor contact (POST /v1/receivables/{id}/contacts).")
    async def receivable_contact_add(
        self, info: Info, input: ReceivableContactAddInput
    ) -> ContactPayload:
        ctx = ctx_of(info)
        rid = _rid(input.receivable_id)
        contact, errors = await attempt(receivables.add_contact(ctx, rid, input.contact))
        if contact is None:
            return ContactPayload(contact=None, receivable=None, user_errors=errors)
        model = await receivables.written(ctx, rid)
        return ContactPayload(
            contact=Contact.from_model(contact),
            receivable=Receivable.from_model(model),
            user_errors=[],
        )

    @strawberry.mutation(description="Submit evidence (POST /v1/receivables/{id}/evidence).")
    async def receivable_evidence_submit(
        self, info: Info, input: ReceivableEvidenceSubmitInput
    ) -> EvidencePayload:
        ctx = ctx_of(info)
        rid = _rid(input.id)
        evidence, errors = await attempt(receivables.submit_evidence(ctx, rid, input))
        if evidence is None:
            return EvidencePayload(evidence=None, receivable=None, user_errors=errors)
        model = await receivables.written(ctx, rid)
        return EvidencePayload(
            evidence=Evidence.from_model(evidence),
            receivable=Receivable.from_model(model),
            user_errors=[],
        )

    @strawberry.mutation(
        description="Decide after a partial payment (POST /v1/receivables/{id}/partial-payment)."
    )
    async def receivable_partial_payment_decide(
        self, info: Info, input: ReceivablePartialPaymentInput
    ) -> ReceivablePayload:
        model, errors = await attempt(
            receivables.decide_partial_payment(ctx_of(info), _rid(input.id), input)
        )
        return _receivable_payload(model, errors)

    @strawberry.mutation(description="Operators: start recovery of a pending receivable.")
    async def receivable_start(self, info: Info, input: ReceivableIdInput) -> ReceivablePayload:
        model, errors = await attempt(receivables.start(ctx_of(info), _rid(input.id)))
        return _receivable_payload(model, errors)

    @strawberry.mutation(description="Operators: record a debtor payment (full or partial).")
    async def receivable_payment_record(
        self, info: Info, input: ReceivablePaymentRecordInput
    ) -> ReceivablePayload:
        model, errors = await attempt(
            receivables.record_payment(ctx_of(info), _rid(input.id), input.amount, input.reference)
        )
        return _receivable_payload(model, errors)

    @strawberry.mutation(description="Operators: pay a fully paid receivable out to the creditor.")
    async def receivable_payout(self, info: Info, input: ReceivableIdInput) -> ReceivablePayload:
        model, errors = await attempt(
            receivables.operator_action(ctx_of(info), _rid(input.id), ReceivableAction.PAYOUT)
        )
        return _receivable_payload(model, errors)

    @strawberry.mutation(description="Operators: the debtor disputes the claim.")
    async def receivable_dispute_open(
        self, info: Info, input: ReceivableReasonInput
    ) -> ReceivablePayload:
        model, errors = await attempt(
            receivables.operator_action(
                ctx_of(info), _rid(input.id), ReceivableAction.DISPUTE, input.reason
            )
        )
        return _receivable_payload(model, errors)

    @strawberry.mutation(description="Operators: ask the creditor for evidence against a dispute.")
    async def receivable_evidence_request(
        self, info: Info, input: ReceivableReasonInput
    ) -> ReceivablePayload:
        model, errors = await attempt(
            receivables.operator_action(
                ctx_of(info), _rid(input.id), ReceivableAction.REQUEST_EVIDENCE, input.reason
            )
        )
        return _receivable_payload(model, errors)


@strawberry.type
class ReceivableSubscription:
    @strawberry.subscription(
        description="Receivables whose status changes, as they are after the change: one "
        "receivable, those of one creditor (userId), or every one in reach. A change already "
        "followed by another when it is sent is skipped (the next one shows the receivable as "
        "it is); the events subscription carries every change."
    )
    async def receivable_status_changed(
        self,
        info: Info,
        user_id: strawberry.ID | None = None,
        receivable_id: strawberry.ID | None = None,
    ) -> AsyncGenerator[Receivable, None]:
        source = receivables.watch_status_changes(
            ctx_of(info),
            receivable_id=_rid(receivable_id) if receivable_id else None,
            user_id=id_ref(user_id, "User") if user_id else None,
        )
        async for node in nodes(source, Receivable.from_model):
            yield node
