"""Who is calling: an operator, a platform (API key) or a creditor (OAuth token with scopes)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from debtgraph.domain.oauth import ALL_SCOPES


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
    # The operator token or OAuth token row, so logout/revocation can target it.
    token_id: int | None = None

    @property
    def is_operator(self) -> bool:
        """Operators see everything."""
        return self.kind is PrincipalKind.OPERATOR

    def has_scope(self, scope: str) -> bool:
        """Operators and platform keys hold every scope; creditors only those granted."""
        if self.kind is PrincipalKind.CREDITOR:
            return scope in self.scopes
        return True

    @property
    def key(self) -> str:
        """A stable string naming the caller (idempotency keys, throttles, logs)."""
        if self.kind is PrincipalKind.PLATFORM:
            return f"platform:{self.platform_id}"
        return f"{self.kind.value}:{self.user_id}"


def platform_principal(platform_id: int) -> Principal:
    """A platform acting with its secret key."""
    return Principal(PrincipalKind.PLATFORM, platform_id=platform_id, scopes=frozenset(ALL_SCOPES))
