"""ExtractionResult nodes and the ``invoiceExtract`` multipart mutation (PRODUCT.md §4)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import strawberry
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from debtgraph.domain.extraction.models import ExtractionResult as ExtractionModel
from debtgraph.resolvers import creditors, extraction
from debtgraph.schema.base import UserError, attempt, ctx_of, nodes_in_order, object_id
from debtgraph.schema.creditors import User
from debtgraph.schema.uploads import FileUpload


@strawberry.type(description="A reason to review an extraction: what, why, and the field.")
class ExtractionWarning:
    code: str
    message: str
    field: str | None = strawberry.field(description="Dotted path in `data`, null for the file.")


@strawberry.type(
    name="ExtractionResult",
    description="What was read from a PDF invoice: a CreateReceivableRequest draft to review.",
)
class ExtractionResult(relay.Node):
    id: relay.NodeID[str]
    extraction_id: str = strawberry.field(description="The id POST /v1/receivables/ocr shows.")
    confidence: float = strawberry.field(description="0..1 over the required fields.")
    data: JSON = strawberry.field(
        description="A CreateReceivableRequest: post it back (after review) unchanged."
    )
    field_confidence: JSON = strawberry.field(description="0..1 per dotted path in `data`.")
    missing_fields: list[str] = strawberry.field(description="Required fields not found.")
    warnings: list[ExtractionWarning]
    page_count: int
    ocr_pages: list[int] = strawberry.field(description="Pages read by OCR (no text layer).")
    created_at: datetime
    model: strawberry.Private[ExtractionModel]

    @classmethod
    def from_model(cls, m: ExtractionModel) -> ExtractionResult:
        """Shape a stored result."""
        return cls(
            id=m.public_id,
            extraction_id=m.public_id,
            confidence=m.confidence,
            data=m.data,
            field_confidence=m.field_confidence,
            missing_fields=list(m.missing_fields),
            warnings=[
                ExtractionWarning(code=w["code"], message=w["message"], field=w.get("field"))
                for w in m.warnings
            ],
            page_count=m.page_count,
            ocr_pages=list(m.ocr_pages),
            created_at=m.created_at,
            model=m,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[ExtractionResult | None]:
        ctx = ctx_of(info)
        return await nodes_in_order(
            node_ids, lambda ids: extraction.results_by_public_id(ctx, ids), cls.from_model
        )

    @strawberry.field(description="The creditor the invoice was read for.")
    async def user(self, info: Info) -> User | None:
        # users:read over this creditor, as Receivable.user asks (PRODUCT.md §1).
        model = await creditors.readable_user(ctx_of(info), self.model.user_id)
        return User.from_model(model) if model else None


@strawberry.input
class InvoiceExtractInput:
    user_id: strawberry.ID = strawberry.field(description="The creditor (User id or usr_… id).")
    file: FileUpload = strawberry.field(description="The PDF (GraphQL multipart request).")


@strawberry.type
class InvoiceExtractPayload:
    extraction: ExtractionResult | None
    user_errors: list[UserError]


@strawberry.type
class ExtractionMutation:
    @strawberry.mutation(
        description="Read a PDF invoice into a receivable draft; same rules as "
        "POST /v1/receivables/ocr (needs receivables:write)."
    )
    async def invoice_extract(
        self, info: Info, input: InvoiceExtractInput
    ) -> InvoiceExtractPayload:
        user_id = object_id(input.user_id, "User")
        row, errors = await attempt(extraction.extract_invoice(ctx_of(info), user_id, input.file))
        return InvoiceExtractPayload(
            extraction=ExtractionResult.from_model(row) if row is not None else None,
            user_errors=errors,
        )
