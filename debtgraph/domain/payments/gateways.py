"""Billing gateways: the deterministic sandbox, and an adapter for a real HTTP gateway.

The sandbox answers every debit at once, from the debit alone, so each SEPA outcome can be
produced on purpose. Test IBANs (checksum-valid, Commerzbank Berlin) give an account refusal:

==========================  ===================================
IBAN                        answer
==========================  ===================================
DE62370400440532013001      declined AC04 (account closed)
DE35370400440532013002      declined AC06 (account blocked)
DE08370400440532013003      declined AG01 (transaction forbidden)
DE78370400440532013004      declined MD01 (no mandate)
==========================  ===================================

Otherwise the amount's cents decide (any other amount is approved):

=====  ==========================================================
cents  answer
=====  ==========================================================
.91    declined AM04 (insufficient funds) on every attempt
.92    declined AM04 on the first attempt, approved on a retry
.93    declined MS03 (reason not specified) on every attempt
.94    declined MS02 (refused by the debtor)
.95    declined MD06 (refund requested)
.99    error (the gateway failed; retryable like AM04)
=====  ==========================================================

The HTTP adapter sends debits to a real gateway, which answers later by calling the signed
callback route; :func:`verify_callback` checks that signature (the Standard Webhooks scheme:
HMAC-SHA256 over ``id.timestamp.body``, base64, in ``webhook-signature`` as ``v1,<sig>``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final

import httpx
import orjson
from standardwebhooks.webhooks import Webhook as StandardWebhook

from debtgraph.domain.core.errors import DomainValidationError, FieldError
from debtgraph.domain.payments.billing import AnswerStatus, Debit, GatewayAnswer

SANDBOX_MID: Final = "SANDBOX-MID-001"
SANDBOX_IBAN_CODES: Final[MappingProxyType[str, str]] = MappingProxyType(
    {
        "DE62370400440532013001": "AC04",
        "DE35370400440532013002": "AC06",
        "DE08370400440532013003": "AG01",
        "DE78370400440532013004": "MD01",
    }
)
_CENTS_CODES: Final[MappingProxyType[int, str]] = MappingProxyType(
    {91: "AM04", 93: "MS03", 94: "MS02", 95: "MD06"}
)
_FIRST_ATTEMPT_ONLY_AM04: Final = 92
_GATEWAY_ERROR: Final = 99
GATEWAY_ERROR_MESSAGE: Final = "The gateway could not process the debit"


def _cents(amount: Decimal) -> int:
    return int((amount * 100) % 100)


def sandbox_answer(debit: Debit) -> GatewayAnswer:
    """The sandbox's verdict on one debit (see the module's tables)."""
    unique_id = "SBX-" + hashlib.sha256(debit.transaction_id.encode()).hexdigest()[:12].upper()
    code = SANDBOX_IBAN_CODES.get(debit.iban)
    cents = _cents(debit.amount)
    status: AnswerStatus = "declined"
    message: str | None = None
    if code is None:
        code = _CENTS_CODES.get(cents)
        if cents == _FIRST_ATTEMPT_ONLY_AM04 and debit.attempt_number == 1:
            code = "AM04"
        elif cents == _GATEWAY_ERROR:
            status, message = "error", GATEWAY_ERROR_MESSAGE
        elif code is None:
            status = "approved"
    return GatewayAnswer(
        transaction_id=debit.transaction_id,
        status=status,
        error_code=code if status == "declined" else None,
        error_message=message,
        unique_id=unique_id,
    )


class SandboxGateway:
    """Answers every debit at once and deterministically; nothing leaves the process."""

    mid_reference = SANDBOX_MID

    async def submit(self, debits: Sequence[Debit]) -> list[GatewayAnswer]:
        """The verdict on every debit."""
        return [sandbox_answer(debit) for debit in debits]


class HttpGateway:
    """A real gateway over HTTP: debits are POSTed; answers come later to the callback route."""

    def __init__(
        self, url: str, api_key: str, mid_reference: str, client: httpx.AsyncClient | None = None
    ) -> None:
        self._url = url
        self._api_key = api_key
        self.mid_reference = mid_reference
        self._client = client

    async def submit(self, debits: Sequence[Debit]) -> list[GatewayAnswer]:
        """Send the debits; the gateway answers through the callback, except for refused ones.

        A batch the gateway refuses for its content (400, 422) is split in halves and each sent
        again, so one debit it cannot take costs that debit an ``error`` answer instead of
        holding back the whole batch on every sweep. A gateway refusing more than
        ``MAX_REFUSED_DEBITS`` debits of one batch refuses the request, not the debits (a
        merchant account it does not enable, say): that raises, like any other refusal (our
        credentials, the gateway down, a timeout), the job fails and the attempts stay unsent
        for the sweep. Debits already accepted by then are sent again later; the gateway dedupes
        them on ``transaction_id``, as it must for a lost answer too, and a 409 (it already has
        that transaction) counts as accepted.
        """
        if not debits:
            return []
        refused: list[GatewayAnswer] = []
        if self._client is not None:
            await self._send(self._client, list(debits), refused)
        else:
            async with httpx.AsyncClient(timeout=30, follow_redirects=False) as client:
                await self._send(client, list(debits), refused)
        return refused

    async def _send(
        self, client: httpx.AsyncClient, debits: list[Debit], refused: list[GatewayAnswer]
    ) -> None:
        body = {"mid_reference": self.mid_reference, "debits": [_debit_body(d) for d in debits]}
        # Uncompressed, so reading the first bytes of a refusal reads no more than that.
        headers = {"Authorization": f"Bearer {self._api_key}", "Accept-Encoding": "identity"}
        async with client.stream("POST", self._url, json=body, headers=headers) as response:
            status = response.status_code
            if status == httpx.codes.CONFLICT and len(debits) == 1:
                return  # the gateway has this transaction already
            if status not in _REFUSED_FOR_CONTENT and status != httpx.codes.CONFLICT:
                response.raise_for_status()
                return
            reason = await _opening(response)
        if len(debits) > 1:
            half = len(debits) // 2
            await self._send(client, debits[:half], refused)
            await self._send(client, debits[half:], refused)
            return
        if len(refused) >= MAX_REFUSED_DEBITS:
            raise GatewayRefusedBatch(
                f"The gateway refused more than {MAX_REFUSED_DEBITS} debits of one batch "
                f"(HTTP {status}): {reason}"
            )
        message = f"The gateway refused the debit (HTTP {status})"
        refused.append(
            GatewayAnswer(
                transaction_id=debits[0].transaction_id,
                status="error",
                error_message=f"{message}: {reason}" if reason else message,
            )
        )


class GatewayRefusedBatch(Exception):
    """The gateway refuses (nearly) every debit of a batch: the request, not the debits."""


# Statuses saying the gateway will never take this request's debits as they are; split and resent.
_REFUSED_FOR_CONTENT: Final = frozenset({400, 422})
# Debits of one batch the gateway may refuse one by one before the batch counts as refused.
MAX_REFUSED_DEBITS: Final = 10
# How much of the gateway's refusal is read, and kept in the attempt's error_message.
_REFUSAL_BYTES: Final = 4096
_REFUSAL_TEXT: Final = 400


async def _opening(response: httpx.Response) -> str:
    """The start of a refusal's body, folded; the rest is never read into memory."""
    head = b""
    async for chunk in response.aiter_raw():
        head += chunk
        if len(head) >= _REFUSAL_BYTES:
            break
    text = head[:_REFUSAL_BYTES].decode("utf-8", "replace")
    return " ".join(text.split())[:_REFUSAL_TEXT]


def _debit_body(debit: Debit) -> dict[str, Any]:
    return {
        "transaction_id": debit.transaction_id,
        "iban": debit.iban,
        "bic": debit.bic,
        "name": debit.name,
        "amount": str(debit.amount),
        "currency": debit.currency,
        "attempt_number": debit.attempt_number,
    }


# Callbacks older (or further in the future) than this are refused as replays.
CALLBACK_TOLERANCE_SECONDS: Final = 300
_BAD_SIGNATURE: Final = "The callback signature is invalid."
_ANSWER_STATUSES: Final = frozenset({"approved", "declined", "error"})


def sign_callback(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value of a callback (what a gateway computes), by the Standard
    Webhooks library: keyed with the base64-decoded part after ``whsec_``. Keyed with the
    secret's text, as before, no gateway signing with a Standard Webhooks library matched."""
    moment = dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
    return StandardWebhook(secret).sign(msg_id=message_id, timestamp=moment, data=body.decode())


def _refused(message: str = _BAD_SIGNATURE, code: str = "invalid_signature") -> Exception:
    return DomainValidationError([FieldError("signature", code, message)])


def check_callback_headers(headers: Mapping[str, str], now: datetime) -> None:
    """Refuse a callback by its headers alone (no id, no signature, a stale timestamp): what
    can be refused before its body is read (PRODUCT.md §12)."""
    _signed_headers(headers, now)


def _signed_headers(headers: Mapping[str, str], now: datetime) -> tuple[str, str, list[str]]:
    message_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "").split()
    # Seconds since 1970 fit in 12 digits for 30,000 years: a longer stamp is no timestamp (and
    # int() of thousands of digits is slow or refused).
    if not (message_id and stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        raise _refused()
    if not signatures:
        raise _refused()
    if abs(now.timestamp() - int(stamp)) > CALLBACK_TOLERANCE_SECONDS:
        raise _refused("The callback timestamp is too old or in the future.", "stale_callback")
    return message_id, stamp, signatures


def verify_callback(
    secret: str, headers: Mapping[str, str], body: bytes, now: datetime
) -> list[GatewayAnswer]:
    """The answers of a signed gateway callback; a bad or stale signature is refused."""
    message_id, stamp, signatures = _signed_headers(headers, now)
    try:
        expected = sign_callback(secret, message_id, int(stamp), body).encode()
    except UnicodeDecodeError:
        raise _refused("The callback body is not UTF-8 JSON.", "invalid_json") from None
    # Compared as bytes: compare_digest refuses str with non-ASCII characters, which a header
    # (decoded as latin-1) may hold.
    if not any(hmac.compare_digest(expected, s.encode("latin-1", "replace")) for s in signatures):
        raise _refused()
    try:
        payload: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _refused("The callback body is not JSON.", "invalid_json") from None
    items = payload.get("answers") if isinstance(payload, dict) else None
    if not isinstance(items, list):
        raise _refused("The callback body has no answers list.", "invalid")
    answers: list[GatewayAnswer] = []
    for item in items:
        if not (
            isinstance(item, dict)
            and isinstance(item.get("transaction_id"), str)
            and isinstance(item.get("status"), str)
            and item["status"] in _ANSWER_STATUSES
        ):
            raise _refused("Each answer needs a transaction_id and a status.", "invalid")
        answers.append(
            GatewayAnswer(
                transaction_id=item["transaction_id"],
                status=item["status"],
                error_code=_optional_text(item.get("error_code"), 10),
                error_message=_optional_text(item.get("error_message"), 500),
                unique_id=_optional_text(item.get("unique_id"), 64),
            )
        )
    return answers


def _optional_text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None
