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

from debtgraph.schema.base import DebtgraphMaskErrors, log_graphql_errors
from debtgraph.schema.blacklist import BlacklistMutation, BlacklistQuery
from debtgraph.schema.creditors import CreditorMutation, UserMutation, UserQuery
from debtgraph.schema.dashboard import DashboardQuery, DashboardSubscription
from debtgraph.schema.debtors import DebtorMutation, DebtorQuery, DebtorSubscription
from debtgraph.schema.events import EventSubscription
from debtgraph.schema.receivables import ReceivableMutation, ReceivableQuery, ReceivableSubscription
from debtgraph.schema.reports import ReportQuery
from debtgraph.schema.uploads import (
    FILE_SCALAR,
    FileUpload,
    UploadMutation,
    UploadQuery,
    UploadSubscription,
)


@strawberry.type
class NodeQuery:
    node: relay.Node | None = relay.node(description="Fetch any object by its global id.")
    nodes: list[relay.Node | None] = relay.node(description="Fetch objects by their global ids.")


QUERIES: list[type] = [
    NodeQuery,
    UserQuery,
    ReceivableQuery,
    ReportQuery,
    UploadQuery,
    DebtorQuery,
    DashboardQuery,
    BlacklistQuery,
]
MUTATIONS: list[type] = [
    UserMutation,
    CreditorMutation,
    ReceivableMutation,
    UploadMutation,
    DebtorMutation,
    BlacklistMutation,
]
SUBSCRIPTIONS: list[type] = [
    EventSubscription,
    ReceivableSubscription,
    UploadSubscription,
    DebtorSubscription,
    DashboardSubscription,
]

MAX_DEPTH = 12
# Cost limits beside depth: aliases multiply work on one field, tokens bound parse cost.
MAX_ALIASES = 30
MAX_TOKENS = 5000


class DebtgraphSchema(strawberry.Schema):
    """Logs client errors (401, 404, bad input, bad ids) at INFO and only the rest as incidents."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        log_graphql_errors(errors)


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
