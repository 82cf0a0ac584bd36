"""Who is calling: an operator, a platform (API key) or a creditor (OAuth token with scopes)."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from debtgraph.domain.oauth.models import ALL_SCOPES


class PrincipalKind(enum.StrEnum):
    """The three kinds of caller."""

    OPERATOR = "operator"
    PLATFORM = "platform"
    CREDITOR = "creditor"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller and what it may do."""

    kind: PrincipalKind
    user_id: int | None = None
    platform_id: int | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    # The operator token, OAuth token or API key row, so logout/revocation can target it.
    token_id: int | None = None

    @property
    def is_operator(self) -> bool:
        """Operators see everything."""
        return self.kind is PrincipalKind.OPERATOR

    def has_scope(self, scope: str) -> bool:
        """Operators hold every scope; platform keys those allowed; creditor tokens those granted.

        Holding a scope is not reach: ``resolvers/permissions.py`` says over whom it applies.
        """
        if self.kind is PrincipalKind.OPERATOR:
            return True
        return scope in self.scopes

    @property
    def key(self) -> str:
        """A stable string naming the caller (idempotency keys, throttles, logs)."""
        if self.kind is PrincipalKind.PLATFORM:
            return f"platform:{self.platform_id}"
        if self.platform_id is not None:
            # A creditor's OAuth token acts for one platform: two platforms connected to the
            # same creditor are two callers (one's Idempotency-Key never replays the other's).
            return f"{self.kind.value}:{self.user_id}:platform:{self.platform_id}"
        return f"{self.kind.value}:{self.user_id}"


def platform_principal(
    platform_id: int, scopes: Iterable[str] = ALL_SCOPES, *, key_id: int | None = None
) -> Principal:
    """A platform acting with its secret key (``key_id``), holding the scopes it is allowed."""
    return Principal(
        PrincipalKind.PLATFORM, platform_id=platform_id, scopes=frozenset(scopes), token_id=key_id
    )
