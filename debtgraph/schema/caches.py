"""Parsing, validation and compilation done once per distinct document instead of per request.

One owner, :data:`DOCUMENTS`, keeps the documents that passed the request's limits and
validated clean, by their text, with what was learnt about each (the rules it validated clean
under, its compiled plans, the limits' verdicts on it); evicting a text drops all of it at
once. It is bounded by the bytes
of the texts it keeps, not by a count: a parsed document costs some hundred times its text (a
64 KB text of 5000 ``__typename`` is ~3.4 MB of nodes), so a count of 512 let anonymous
callers grow one process by gigabytes with whitespace variants of refused documents. A text
is kept only after it passed the limits and validated, so a refused document is never kept,
and never one over :data:`MAX_TEXT_BYTES`. A compiled plan is charged to its text's entry by
its weight in text bytes' worth (``compiled.plan_weight``): an alias-heavy text's plans weigh
hundreds of times the text, and uncharged they would pin memory the budget does not see. A
verdict of the limits (schema/limits.py) is charged the same way.

Strawberry's ParserCache is not used: it caches every text that parses, before any limit, and
raises a syntax error from its hook, outside Strawberry's own handling (the error then loses
its ``GRAPHQL_PARSE_FAILED`` code). Strawberry's ValidationCache is not used either: it hands
every request the same list of GraphQLError objects, which the error extensions then edit in
place (DebtgraphMaskErrors strips "Did you mean" for callers refused introspection,
GraphQLLimits adds codes), so one caller's edits would reach the next. Here only a clean
validation is remembered; a document with errors is validated again each time.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from graphql import DocumentNode
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

# A longer text is parsed and validated on each request (people write short queries).
MAX_TEXT_BYTES = 16 * 1024
# The texts of every kept document together: with the nodes ~50-100 bytes a text byte, tens
# of MB at worst per process.
MAX_CACHED_BYTES = 1024 * 1024


class _Entry:
    __slots__ = ("document", "options", "plans", "size", "valid", "verdicts")

    def __init__(self, document: DocumentNode, options: tuple[Any, ...], size: int) -> None:
        self.document = document
        self.options = options
        self.size = size
        # (id of the graphql-core schema, the validation rules) it validated clean under.
        self.valid: set[tuple[int, tuple[Any, ...]]] = set()
        # (id of the schema, operation name) → its compiled plan or None (schema/compiled.py).
        self.plans: dict[tuple[int, str | None], Any] = {}
        # The walks of the limits on it, by what they depend on (schema/limits.py).
        self.verdicts: dict[Any, Any] = {}


class DocumentCache:
    """Documents that passed the limits and validated clean, least recently used evicted first."""

    def __init__(self, max_bytes: int = MAX_CACHED_BYTES, max_text: int = MAX_TEXT_BYTES) -> None:
        self.max_bytes = max_bytes
        self.max_text = max_text
        # The UTF-8 length of the kept texts plus their compiled plans' weight (``charge``).
        self.bytes = 0
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, text: object) -> bool:
        return text in self._entries

    def document(self, text: str, options: tuple[Any, ...]) -> DocumentNode | None:
        """The kept document of this text parsed with these options."""
        entry = self._entries.get(text)
        if entry is None or entry.options != options:
            return None
        self._entries.move_to_end(text)
        return entry.document

    def validated(
        self, text: str, document: DocumentNode, key: tuple[int, tuple[Any, ...]]
    ) -> bool:
        """Whether this very document validated clean before under this schema and rules."""
        entry = self._entries.get(text)
        return entry is not None and entry.document is document and key in entry.valid

    def remember(
        self,
        text: str,
        options: tuple[Any, ...],
        document: DocumentNode,
        key: tuple[int, tuple[Any, ...]],
    ) -> None:
        """Keep a document that passed the limits and validated clean under ``key``."""
        entry = self._entries.get(text)
        if entry is None or entry.document is not document:
            size = len(text.encode())
            if size > self.max_text:
                return
            self._drop(text)
            entry = self._entries[text] = _Entry(document, options, size)
            self.bytes += size
            while self.bytes > self.max_bytes:
                self._drop(next(iter(self._entries)))
        entry.valid.add(key)

    def plans(self, text: str, operation: Any) -> dict[tuple[int, str | None], Any] | None:
        """The plans of the kept document this operation node belongs to, else None."""
        entry = self._entries.get(text)
        if entry is None or all(d is not operation for d in entry.document.definitions):
            return None
        return entry.plans

    def verdicts(self, text: str, document: DocumentNode) -> dict[Any, Any] | None:
        """The limits' verdicts kept with this very document, else None (not kept)."""
        entry = self._entries.get(text)
        if entry is None or entry.document is not document:
            return None
        return entry.verdicts

    def charge(self, text: str, weight: int) -> None:
        """Add a compiled plan's weight to the kept text's entry, evicting to stay in budget.

        The entry itself may be evicted (a plan heavier than the budget allows): its plan is
        then compiled again on the next request, like a text that is not kept.
        """
        entry = self._entries.get(text)
        if entry is None or weight <= 0:
            return
        entry.size += weight
        self.bytes += weight
        while self.bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def _drop(self, text: str) -> None:
        entry = self._entries.pop(text, None)
        if entry is not None:
            self.bytes -= entry.size


DOCUMENTS = DocumentCache()


def _options(context: Any) -> tuple[Any, ...]:
    return tuple(sorted(context.parse_options.items()))


class ParsedDocuments(SchemaExtension):
    """The kept document of a text seen before; any other text is parsed by Strawberry."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None and context.graphql_document is None:
            context.graphql_document = DOCUMENTS.document(context.query, _options(context))
        yield


class CleanValidationCache(SchemaExtension):
    """Skip validating a document (the same parsed object) that validated clean before.

    Must come after GraphQLLimits: the limits depend on the caller and the variables, so they
    are applied on every request (to a verdict kept with the document when the variables read
    the same), before this and before execution; a document they refuse arrives here with
    errors and is neither validated nor kept.
    """

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        text = context.query
        if document is not None and context.pre_execution_errors is None:
            rules = tuple(context.validation_rules)
            key = (id(context.schema._schema), rules)
            if text is not None and DOCUMENTS.validated(text, document, key):
                context.pre_execution_errors = []
            else:
                errors = validate_document(context.schema._schema, document, rules)
                context.pre_execution_errors = errors
                if not errors and text is not None:
                    DOCUMENTS.remember(text, _options(context), document, key)
        yield
