"""Parsing and validation done once per distinct document instead of once per request.

Parsed documents are kept in an LRU keyed by the text and the parse options (so
MaxTokensLimiter's token limit still applies to each text once), like Strawberry's ParserCache,
which is not used as it is: it raises a syntax error from its hook, outside Strawberry's own
handling, and the error then loses its ``GRAPHQL_PARSE_FAILED`` code. Strawberry's
ValidationCache is not used either: it hands every request the same list of GraphQLError
objects, which the error extensions then edit in place (DebtgraphMaskErrors strips "Did you
mean" for callers refused introspection, GraphQLLimits adds codes), so one caller's edits would
reach the next. Here only
a clean validation is remembered; a document with errors is validated again each time.
"""

from __future__ import annotations

import contextlib
import functools
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from graphql import parse
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

MAX_DOCUMENTS = 512

_parse = functools.lru_cache(maxsize=MAX_DOCUMENTS)(parse)


class ParsedDocuments(SchemaExtension):
    """The parsed document of a text seen before; a text that fails is left to Strawberry."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None and context.graphql_document is None:
            # On a syntax error Strawberry parses it again within its own error handling.
            with contextlib.suppress(Exception):
                context.graphql_document = _parse(context.query, **context.parse_options)
        yield


# id(document) and the rules → the document, kept alive so its id is not reused.
_VALID: OrderedDict[tuple[int, tuple[Any, ...]], Any] = OrderedDict()


class CleanValidationCache(SchemaExtension):
    """Skip validating a document (the same parsed object) that validated clean before.

    Must come after GraphQLLimits: the limits depend on the caller and the variables, so they
    run on every request, before this and before execution.
    """

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            rules = tuple(context.validation_rules)
            key = (id(document), rules)
            if _VALID.get(key) is document:
                _VALID.move_to_end(key)
                context.pre_execution_errors = []
            else:
                errors = validate_document(context.schema._schema, document, rules)
                context.pre_execution_errors = errors
                if not errors:
                    _VALID[key] = document
                    if len(_VALID) > MAX_DOCUMENTS:
                        _VALID.popitem(last=False)
        yield
