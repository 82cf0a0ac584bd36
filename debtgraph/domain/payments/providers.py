"""VOP providers behind ``vop.VopProvider``: the sandbox (``vop.SandboxVopProvider``) and HTTP.

The HTTP provider speaks a small batched JSON protocol to a configurable URL
(``VOP_PROVIDER_URL``), so a real verification-of-payee service plugs in behind an adapter of its
own or directly:

``POST <url>`` with ``{"requests": [{"iban": "ES80…", "name": "Maria Rodriguez"}, …]}`` answers
``200`` with ``{"results": [{"account_status": "open" | "closed" | "unknown_bank",
"holder_name": "…" | null}, …]}``, one result per request and in the same order.

At most ``batch_size`` requests go in one call, every call has a timeout, and anything other
than a well-formed answer raises :class:`VopUnavailable`: the caller then leaves the debtors
unchecked (no log is written), to be checked by a later run, rather than recording a verdict
the service never gave.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import httpx

from debtgraph.domain.core.errors import ExpectedError
from debtgraph.domain.payments.vop import (
    AccountStatus,
    SandboxVopProvider,
    VopAnswer,
    VopProvider,
    VopRequest,
)

DEFAULT_BATCH: Final = 500
DEFAULT_TIMEOUT: Final = 10.0
_STATUSES: Final[frozenset[str]] = frozenset({"open", "closed", "unknown_bank"})


class VopUnavailable(ExpectedError, RuntimeError):
    """The VOP service did not give a usable answer (down, slow, or answering nonsense)."""

    code = "vop_unavailable"


class HttpVopProvider:
    """A VOP service reached over HTTP in batches (protocol in the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        batch_size: int = DEFAULT_BATCH,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.url = url
        self.timeout = timeout
        self.batch_size = batch_size
        self._transport = transport

    async def check(self, iban: str, name: str) -> VopAnswer:
        """Ask about one account."""
        return (await self.check_many([VopRequest(iban, name)]))[0]

    async def check_many(self, requests: Sequence[VopRequest]) -> list[VopAnswer]:
        """Ask about every account, ``batch_size`` per call, over one connection."""
        if not requests:
            return []
        answers: list[VopAnswer] = []
        async with httpx.AsyncClient(timeout=self.timeout, transport=self._transport) as client:
            for start in range(0, len(requests), self.batch_size):
                batch = requests[start : start + self.batch_size]
                answers.extend(await self._ask(client, batch))
        return answers

    async def _ask(self, client: httpx.AsyncClient, batch: Sequence[VopRequest]) -> list[VopAnswer]:
        body = {"requests": [{"iban": r.iban, "name": r.name} for r in batch]}
        try:
            response = await client.post(self.url, json=body)
        except httpx.HTTPError as exc:
            raise VopUnavailable(
                f"The VOP service could not be reached: {type(exc).__name__}."
            ) from exc
        if response.status_code != 200:
            raise VopUnavailable(f"The VOP service answered {response.status_code}.")
        try:
            payload = response.json()
        except ValueError as exc:
            raise VopUnavailable("The VOP service answered with invalid JSON.") from exc
        return _answers(payload, len(batch))


def _answers(payload: Any, expected: int) -> list[VopAnswer]:
    """The answers of one response, checked: one per request, known statuses, text names."""
    results = payload.get("results") if isinstance(payload, dict) else None
    if not isinstance(results, list) or len(results) != expected:
        raise VopUnavailable("The VOP service answered without one result per request.")
    answers: list[VopAnswer] = []
    for item in results:
        status = item.get("account_status") if isinstance(item, dict) else None
        holder = item.get("holder_name") if isinstance(item, dict) else None
        if status not in _STATUSES or not (holder is None or isinstance(holder, str)):
            raise VopUnavailable("The VOP service answered with an unknown result.")
        account_status: AccountStatus = status
        answers.append(VopAnswer(account_status, holder[:200] if holder else holder))
    return answers


def provider_from_settings(
    kind: str, url: str | None, *, timeout: float, batch_size: int
) -> VopProvider:
    """The provider ``VOP_PROVIDER`` names: ``sandbox`` (default) or ``http`` (needs a URL)."""
    if kind == "sandbox":
        return SandboxVopProvider()
    if kind == "http":
        if not url:
            raise ValueError("VOP_PROVIDER=http needs VOP_PROVIDER_URL")
        return HttpVopProvider(url, timeout=timeout, batch_size=batch_size)
    raise ValueError(f"VOP_PROVIDER must be sandbox or http, not {kind!r}")


PORT: Final = "vop"


def provider_in(ports: dict[str, Any]) -> VopProvider:
    """The VOP provider the composition root registered (the sandbox when none was)."""
    provider = ports.get(PORT)
    return provider if provider is not None else SandboxVopProvider()
