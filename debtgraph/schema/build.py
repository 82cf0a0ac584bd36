"""Schema assembly. An area adds its root types to the lists below and nothing else changes."""

from __future__ import annotations

from collections.abc import Iterator

import strawberry
from graphql.error import GraphQLError
from strawberry import relay
from strawberry.extensions import (
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types.execution import ExecutionContext

from debtgraph.schema.base import EXPECTED, DebtgraphMaskErrors
from debtgraph.schema.creditors import CreditorMutation
from debtgraph.schema.events import EventSubscription
from debtgraph.schema.extraction import ExtractionMutation
from debtgraph.schema.receivables import ReceivableMutation, ReceivableQuery, ReceivableSubscription
from debtgraph.schema.reports import ReportQuery
from debtgraph.schema.uploads import (
    FILE_SCALAR,
    FileUpload,
    UploadMutation,
    UploadQuery,
    UploadSubscription,
)
from debtgraph.schema.users import UserMutation, UserQuery


@strawberry.type
class NodeQuery:
    node: relay.Node | None = relay.node(description="Fetch any object by its global id.")
    nodes: list[relay.Node | None] = relay.node(description="Fetch objects by their global ids.")


QUERIES: list[type] = [NodeQuery, UserQuery, ReceivableQuery, ReportQuery, UploadQuery]
MUTATIONS: list[type] = [
    UserMutation,
    CreditorMutation,
    ReceivableMutation,
    UploadMutation,
    ExtractionMutation,
]
SUBSCRIPTIONS: list[type] = [EventSubscription, ReceivableSubscription, UploadSubscription]

MAX_DEPTH = 12
# Cost limits beside depth: aliases multiply work on one field, tokens bound parse cost.
MAX_ALIASES = 30
MAX_TOKENS = 5000


class DebtgraphSchema(strawberry.Schema):
    """Logs only unexpected errors: expected ones (401, 404, bad input) are not incidents."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        unexpected = [
            e
            for e in errors
            if e.original_error is not None and not isinstance(e.original_error, EXPECTED)
        ]
        if unexpected:
            super().process_errors(unexpected, execution_context)


class ConfiguredDepthLimiter(SchemaExtension):
    """QueryDepthLimiter whose limit is the request's ``settings.graphql_max_depth``."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        settings = getattr(context, "settings", None)
        depth = getattr(settings, "graphql_max_depth", None)
        if depth is None:
            depth = MAX_DEPTH
        limiter = QueryDepthLimiter(max_depth=depth)
        self.execution_context.validation_rules = (
            *self.execution_context.validation_rules,
            *limiter.validation_rules,
        )
        yield


def build_schema() -> strawberry.Schema:
    """The schema with error masking, and depth, alias and token limits checked before execution."""
    query = merge_types("Query", tuple(QUERIES))
    mutation = merge_types("Mutation", tuple(MUTATIONS))
    subscription = merge_types("Subscription", tuple(SUBSCRIPTIONS))
    return DebtgraphSchema(
        query=query,
        mutation=mutation,
        subscription=subscription,
        config=StrawberryConfig(scalar_map={FileUpload: FILE_SCALAR}),
        extensions=[
            DebtgraphMaskErrors,
            ConfiguredDepthLimiter,
            lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
            lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        ],
    )
