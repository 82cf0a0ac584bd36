"""Expected failures shared by every area: one base, field-level validation, refused transitions.

Every failure a caller is expected to handle derives from :class:`ExpectedError`, whichever layer
raises it, so each face catches that one type and renders it in its documented shape; anything
else is a fault (a masked 500).

``FieldError.field`` is a dotted path into the request (``invoice.due_date``,
``debtor.contacts[0].email``); the empty string means the request as a whole (render it as
``null``). Codes are stable, machine-readable identifiers; messages are for humans.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one input field."""

    field: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        """The error as a plain ``{field, code, message}`` mapping."""
        return {"field": self.field, "code": self.code, "message": self.message}


class ExpectedError(Exception):
    """Base of every failure a caller is expected to handle: a stable ``code`` and a ``message``."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DomainValidationError(ExpectedError):
    """Input refused by domain rules; carries every error found, the first being "the" error."""

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors: list[FieldError] = list(errors)
        if not self.errors:
            # An empty error list would render as a 400 with nothing to show: a programming error.
            raise ValueError("DomainValidationError needs at least one FieldError")
        super().__init__(self.errors[0].message)
        # The main error's code, so the refusal reads like any other expected failure.
        self.code = self.errors[0].code

    @property
    def first(self) -> FieldError:
        """The error reported as the main one (REST shows it in ``error``)."""
        return self.errors[0]

    @property
    def field(self) -> str:
        """Dotted path of the main error."""
        return self.errors[0].field


class InvalidTransition(ExpectedError):
    """An action that the current status does not allow (REST 409 ``invalid_transition``)."""

    code = "invalid_transition"

    def __init__(self, from_status: str, action: str, message: str | None = None) -> None:
        self.from_status = from_status
        self.action = action
        self.message = message or f"Action '{action}' is not allowed from status '{from_status}'."
        super().__init__(self.message)


# --- Reading untrusted payloads ------------------------------------------------------------------
# JSON bodies and GraphQL inputs reach the domain as plain mappings. PayloadReader turns each value
# into its typed form (the OpenAPI primitive types and formats: string, integer, number, boolean,
# date, date-time, email, uri) and records a FieldError instead of raising, so one response can
# list every problem. Absent and ``null`` are the same thing; a blank string counts as absent.

_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_TLD = re.compile(r"[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59}")
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
_PHONE_SEPARATORS = re.compile(r"[\s.\-()/]")
_PHONE_DIGITS = re.compile(r"\+?\d{6,15}")
# An amount's smallest unit: amounts carry at most 2 decimals.
_CENT = Decimal("0.01")


# PostgreSQL text and JSONB cannot hold U+0000: every face refuses it with this code and message.
INVALID_CHARACTER = "invalid_character"
NUL_MESSAGE = "Text must not contain the NUL character (\\u0000)."


def refuse_nul_file_name(file: object, field: str = "file") -> None:
    """Refuse an uploaded file whose name holds U+0000, before any byte of it is copied.

    A multipart part's filename is client text like any other (PRODUCT.md §12), which the
    stores keep and PostgreSQL cannot hold: an insert failing on it was a 500 and a trace.
    """
    name = getattr(file, "filename", None)
    if isinstance(name, str) and "\x00" in name:
        raise DomainValidationError([FieldError(field, INVALID_CHARACTER, NUL_MESSAGE)])


def nul_path(value: Any, path: str = "") -> str | None:
    """The dotted path of the first string (value or key) holding U+0000, if any.

    Iterative, so that a deeply nested body cannot exhaust the interpreter's stack.
    """
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return where
        elif isinstance(item, Mapping):
            children: list[tuple[Any, str]] = []
            for key, child in item.items():
                if "\x00" in str(key):
                    return where
                children.append((child, f"{where}.{key}" if where else str(key)))
            # Reversed onto the stack so that the first offending field is the one reported.
            stack.extend(reversed(children))
        elif isinstance(item, list | tuple):
            stack.extend(reversed([(child, f"{where}[{i}]") for i, child in enumerate(item)]))
    return None


def normalize_email(value: str) -> str | None:
    """The address with its domain lower-cased, or None when its syntax is not a valid email."""
    value = value.strip()
    # Syntax only, by design: no DNS or SMTP lookups are made to validate input (PRODUCT §11).
    if len(value) > 254 or value.count("@") != 1:
        return None
    local, domain = value.split("@")
    if not local or len(local) > 64 or not _EMAIL_LOCAL.fullmatch(local):
        return None
    try:
        # Internationalised domains are accepted through their ASCII (punycode) form.
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        return None
    if not _TLD.fullmatch(labels[-1]):
        return None
    normalized = f"{local}@{domain.lower()}"
    # Lower-casing may lengthen the domain ("İ" is "i" and a combining dot): the address kept
    # must still be one an email column holds.
    return normalized if len(normalized) <= 254 else None


def is_valid_email(value: str) -> bool:
    """Whether the string is a syntactically valid email address (no DNS check)."""
    return normalize_email(value) is not None


class InputRecord(Mapping[str, Any]):
    """A face's typed input object (a dataclass: a GraphQL input) read like the JSON object.

    GraphQL hands the use cases its inputs as built (dates as ``date``, amounts as ``Decimal``,
    enums as the domain's own StrEnums, nested inputs as objects): the readers below take them as
    they are, under the same field names REST's JSON uses, so one set of rules reads both faces
    and nothing is turned back into JSON text to be parsed again.
    """

    __slots__ = ("_names", "_record")

    def __init__(self, record: Any) -> None:
        self._record = record
        self._names = tuple(f.name for f in dataclasses.fields(record))

    def __getitem__(self, key: str) -> Any:
        if key not in self._names:
            raise KeyError(key)
        return getattr(self._record, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def input_fields(value: Any) -> Any:
    """A typed input object as an InputRecord; anything else (JSON from REST) as it is."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return InputRecord(value)
    return value


class PayloadReader:
    """Reads untrusted JSON-like values into typed ones, collecting a FieldError per problem."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, field: str, code: str, message: str) -> None:
        """Record one error."""
        self.errors.append(FieldError(field, code, message))

    def raise_if_any(self) -> None:
        """Raise DomainValidationError with every recorded error, if there is any."""
        if self.errors:
            raise DomainValidationError(self.errors)

    def _type_error(self, path: str, expected: str) -> None:
        self.add(path, "invalid_type", f"{path or 'The request body'} must be {expected}.")

    def _required(self, path: str) -> None:
        self.add(path, "required", f"{path} is required.")

    def mapping(self, value: Any, path: str, *, required: bool = False) -> Mapping[str, Any] | None:
        """A JSON object (or a typed input object), or None when absent or of the wrong type."""
        value = input_fields(value)
        if value is None:
            if required:
                self._required(path)
            return None
        if not isinstance(value, Mapping):
            self._type_error(path, "an object")
            return None
        return value

    def free_mapping(
        self, value: Any, path: str, *, required: bool = False
    ) -> Mapping[str, Any] | None:
        """A JSON object kept as it is (metadata): any text in it, keys included, free of NUL."""
        mapping = self.mapping(value, path, required=required)
        where = nul_path(mapping, path) if mapping is not None else None
        if where is not None:
            self.add(where, INVALID_CHARACTER, NUL_MESSAGE)
            return None
        return mapping

    def array(
        self, value: Any, path: str, *, required: bool = False, max_items: int = 100
    ) -> list[Any] | None:
        """A JSON array; an empty one is an error when required."""
        if value is None:
            if required:
                self._required(path)
            return None
        if not isinstance(value, list | tuple):
            self._type_error(path, "an array")
            return None
        if required and not value:
            self.add(path, "required", f"{path} must contain at least one item.")
            return None
        if len(value) > max_items:
            self.add(path, "too_many", f"{path} must contain at most {max_items} items.")
            return None
        return list(value)

    def string(
        self, value: Any, path: str, *, required: bool = False, max_length: int = 255
    ) -> str | None:
        """A stripped string; blank counts as absent."""
        if value is not None and not isinstance(value, str):
            self._type_error(path, "a string")
            return None
        text = value.strip() if value is not None else ""
        if "\x00" in text:
            self.add(path, INVALID_CHARACTER, NUL_MESSAGE)
            return None
        if not text:
            if required:
                self.add(path, "required", f"{path} is required and must not be blank.")
            return None
        if len(text) > max_length:
            self.add(path, "too_long", f"{path} must be at most {max_length} characters.")
            return None
        return text

    def boolean(self, value: Any, path: str, *, default: bool = False) -> bool:
        """A JSON boolean (no truthy strings or numbers)."""
        if value is None:
            return default
        if not isinstance(value, bool):
            self._type_error(path, "a boolean")
            return default
        return value

    def integer(
        self,
        value: Any,
        path: str,
        *,
        default: int | None = None,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        """A JSON integer within bounds; floats (even 2.0), strings and booleans are refused."""
        if value is None:
            if default is None:
                self._required(path)
            return default
        # bool is an int subclass: True must not pass as 1.
        if isinstance(value, bool) or not isinstance(value, int):
            self._type_error(path, "an integer")
            return None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            self.add(path, "out_of_range", f"{path} must be between {minimum} and {maximum}.")
            return None
        return value

    def money(
        self,
        value: Any,
        path: str,
        *,
        required: bool = False,
        positive: bool = False,
        maximum: Decimal = Decimal("9999999999.99"),
    ) -> Decimal | None:
        """An amount with at most 2 decimals, from a JSON number (or a typed input's Decimal).

        A string is refused as any other non-number is: the seed types every amount ``number``,
        and a schema-driven client checks that a value of another type is refused, not read.
        """
        if value is None:
            if required:
                self._required(path)
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            self._type_error(path, "a number")
            return None
        if isinstance(value, float):
            # repr() gives the shortest text that round-trips, so 0.1 becomes Decimal("0.1"),
            # not the binary approximation.
            amount = Decimal(repr(value)) if math.isfinite(value) else None
        else:
            amount = Decimal(value) if not isinstance(value, Decimal) or value.is_finite() else None
        if amount is None:
            self.add(path, "invalid_amount", f"{path} must be a finite decimal number.")
            return None
        # Judged by exponent before any arithmetic: a typed input's Decimal may be 1e999999999,
        # whose abs() overflows the context (a 500), or 1e-999999999, whose cents the context
        # rounds to 0 (it passed as 0.00 where 0 is refused). Compared exactly, never rounded.
        if amount.is_zero():
            amount = Decimal(0)
        elif amount.adjusted() > maximum.adjusted() or abs(amount) > maximum:
            self.add(path, "out_of_range", f"{path} must not exceed {maximum}.")
            return None
        elif amount.adjusted() < -2 or amount != amount.quantize(_CENT):
            self.add(path, "invalid_amount", f"{path} must have at most 2 decimal places.")
            return None
        if amount < 0 or (positive and amount == 0):
            bound = "greater than 0" if positive else "0 or more"
            self.add(path, "out_of_range", f"{path} must be {bound}.")
            return None
        return amount.quantize(_CENT)

    def iso_date(self, value: Any, path: str, *, required: bool = False) -> date | None:
        """An ISO 8601 calendar date ``YYYY-MM-DD`` (or a ``date`` object)."""
        if value is None:
            if required:
                self._required(path)
            return None
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        if isinstance(value, str) and _DATE_TEXT.fullmatch(value.strip()):
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                pass
        self.add(path, "invalid_date", f"{path} must be a date formatted YYYY-MM-DD.")
        return None

    def timestamp(self, value: Any, path: str, *, required: bool = False) -> datetime | None:
        """An aware UTC datetime from ISO 8601 text or Unix seconds; naive text is taken as UTC."""
        if value is None:
            if required:
                self._required(path)
            return None
        moment: datetime | None = None
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, int) and not isinstance(value, bool):
            with contextlib.suppress(OverflowError, OSError, ValueError):
                moment = datetime.fromtimestamp(value, UTC)
        elif isinstance(value, str) and value.strip():
            with contextlib.suppress(ValueError):
                moment = datetime.fromisoformat(value.strip())
        if moment is not None and moment.tzinfo is not None:
            try:
                moment = moment.astimezone(UTC)
            except OverflowError:
                # Its offset takes it past year 1 or 9999: "9999-12-31T23:59:59-14:00".
                moment = None
        if moment is None:
            self.add(
                path, "invalid_date", f"{path} must be an ISO 8601 date-time or a Unix timestamp."
            )
            return None
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment

    def email(self, value: Any, path: str, *, required: bool = False) -> str | None:
        """A syntactically valid email address, domain lower-cased."""
        text = self.string(value, path, required=required, max_length=254)
        if text is None:
            return None
        normalized = normalize_email(text)
        if normalized is None:
            self.add(path, "invalid_email", f"{path} is not a valid email address.")
        return normalized

    def url(
        self, value: Any, path: str, *, required: bool = False, max_length: int = 2000
    ) -> str | None:
        """An absolute http(s) URL."""
        text = self.string(value, path, required=required, max_length=max_length)
        if text is None:
            return None
        try:
            parts = urlsplit(text)
            valid = parts.scheme in {"http", "https"} and bool(parts.hostname)
        except ValueError:
            valid = False
        if not valid or any(ch.isspace() for ch in text):
            self.add(path, "invalid_url", f"{path} must be an absolute http(s) URL.")
            return None
        return text

    def phone(self, value: Any, path: str) -> str | None:
        """A phone number of 6 to 15 digits, optionally with a leading + and usual separators."""
        text = self.string(value, path, max_length=40)
        if text is None:
            return None
        if not _PHONE_DIGITS.fullmatch(_PHONE_SEPARATORS.sub("", text)):
            self.add(path, "invalid_phone", f"{path} is not a valid phone number.")
            return None
        return text

    def choice(
        self, value: Any, path: str, choices: Sequence[str], *, default: str | None
    ) -> str | None:
        """One of a fixed set of strings; ``default=None`` makes it required."""
        if value is None:
            if default is None:
                self.add(path, "required", f"{path} is required: one of {', '.join(choices)}.")
            return default
        if not isinstance(value, str):
            self._type_error(path, "a string")
            return None
        if value not in choices:
            self.add(path, "invalid_choice", f"{path} must be one of: {', '.join(choices)}.")
            return None
        return value

    def ip_address(self, value: Any, path: str, *, required: bool = False) -> str | None:
        """An IPv4 or IPv6 address, in its canonical text form."""
        text = self.string(value, path, required=required, max_length=64)
        if text is None:
            return None
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            self.add(path, "invalid_ip", f"{path} must be an IPv4 or IPv6 address.")
            return None
