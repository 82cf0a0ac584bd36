"""Verification of payee (VOP): name matching, scoring, risk class and the sandbox provider.

Score weighting (0..100). A rejected account scores in the 0-19 band whatever else is known:
invalid IBAN 0, bank unknown to the provider (``unknown_bank``) 5, closed account 10. Otherwise
the score is the sum of

=====================================  ======
provider's name check: match           70
provider's name check: close_match     50
provider's name check: not_possible    35
provider's name check: no_match        15
bank identified from the IBAN          +10
debtor country consistent with IBAN    +10
=====================================  ======

so with the bank identified and the country consistent a match scores 90 (high, verified), a
close match 70 (medium, likely_verified), not possible 55 (low, inconclusive) and no match 35
(low, mismatch); each missing bonus moves the score down by 10.

Sandbox test IBANs (checksum-valid, national check digits too; every other valid IBAN answers
with the name it was asked about, a match):

===========================  ===========================  ============================
IBAN                         bank                         answer
===========================  ===========================  ============================
ES8001822370440201234567     BBVA (0182)                  close_match: a variant name
ES1600491500040511111111     Banco Santander (0049)       no_match: an unrelated name
ES1600810200220000000123     Banco de Sabadell (0081)     not_possible: no holder name
FR7630004000000000000000151  BNP Paribas (30004)          closed account
ES8099990001450000000001     none (9999, unregistered)    unknown_bank
===========================  ===========================  ============================
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final, Literal, NamedTuple, Protocol, runtime_checkable

from rapidfuzz import fuzz

from debtgraph.domain.banking.iban import check_digits_ok, normalize_iban

NameOutcome = Literal["match", "close_match", "no_match", "not_possible"]
AccountStatus = Literal["open", "closed", "unknown_bank"]
ScoreLabel = Literal["high", "medium", "low"]
VopResult = Literal["verified", "likely_verified", "inconclusive", "mismatch", "rejected"]
RiskClass = Literal["low", "medium", "high"]
SandboxBehaviour = Literal["close_match", "no_match", "not_possible", "closed", "unknown_bank"]

# The VOP score ranges table (tether-api.md): 80+ high/verified, 60+ medium/likely_verified and
# positive, 40+ low/inconclusive, below 40 negative, 20+ mismatch, below 20 rejected.
HIGH_SCORE: Final = 80
POSITIVE_SCORE: Final = 60
NEGATIVE_BELOW: Final = 40
REJECTED_BELOW: Final = 20

MATCH_THRESHOLD: Final = 90.0
CLOSE_MATCH_THRESHOLD: Final = 75.0
# An initial agrees with a full first name but cannot prove it: at best a close match.
INITIAL_MATCH_CAP: Final = 85.0

_NAME_POINTS: Final[dict[str, int]] = {
    "match": 70,
    "close_match": 50,
    "not_possible": 35,
    "no_match": 15,
}
_BANK_POINTS: Final = 10
_COUNTRY_POINTS: Final = 10
_INVALID_IBAN_SCORE: Final = 0
_UNKNOWN_BANK_SCORE: Final = 5
_CLOSED_SCORE: Final = 10

EPC_CODES: Final[MappingProxyType[str, str]] = MappingProxyType(
    {
        "verified": "MTCH",
        "likely_verified": "CMTC",
        "mismatch": "NMTC",
        "inconclusive": "NOAP",
    }
)

SANDBOX_TEST_IBANS: Final[MappingProxyType[str, SandboxBehaviour]] = MappingProxyType(
    {
        "ES8001822370440201234567": "close_match",
        "ES1600491500040511111111": "no_match",
        "ES1600810200220000000123": "not_possible",
        "FR7630004000000000000000151": "closed",
        "ES8099990001450000000001": "unknown_bank",
    }
)
_UNRELATED_NAMES: Final = ("Zacarias Quintanilla Ybarra", "Hildegard Oosterhuis")

# Letters NFKD does not decompose into a base letter and an accent.
_TRANSLITERATION: Final = str.maketrans(
    {
        "ß": "ss",
        "ø": "o",
        "Ø": "O",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "ð": "d",
        "þ": "th",
    }
)
_APOSTROPHES: Final = re.compile("['`\u2019\u00b4]")
# Distinct names whose words are kept: bounded memory, and a file's names repeat within a batch.
_NAME_CACHE_SIZE: Final = 8192
_NON_WORD: Final = re.compile(r"[\W_]+")


@dataclass(frozen=True, slots=True)
class NameMatch:
    """How closely the account holder's name matches the expected name."""

    ratio: float
    outcome: NameOutcome


_MATCH: Final = NameMatch(100.0, "match")
_NOT_POSSIBLE: Final = NameMatch(0.0, "not_possible")


class VopAnswer(NamedTuple):
    """A provider's answer: the account's status and the holder name it reports, if any.

    A named tuple rather than a frozen dataclass: as immutable, and a batch builds one per
    check at a fraction of the cost.
    """

    account_status: AccountStatus
    holder_name: str | None


@dataclass(frozen=True, slots=True)
class VopVerdict:
    """Everything a VOP log records about one check."""

    score: int
    label: ScoreLabel
    result: VopResult
    epc_code: str | None
    name_match: NameMatch
    holder_name: str | None
    is_positive: bool
    is_negative: bool

    @property
    def name_matched(self) -> bool:
        """Tell whether the name matched or closely matched (the debtor's ``name_matched``)."""
        return self.name_match.outcome in {"match", "close_match"}


class VopRequest(NamedTuple):
    """One question to a provider: does ``name`` hold the account ``iban``? (A named tuple,
    like ``VopAnswer``.)"""

    iban: str
    name: str


class VopProvider(Protocol):
    """A verification-of-payee service, asked set-wise: one call answers a whole batch."""

    async def check(self, iban: str, name: str) -> VopAnswer:
        """Ask the account holder's bank whether ``name`` holds the account ``iban``."""
        ...

    async def check_many(self, requests: Sequence[VopRequest]) -> list[VopAnswer]:
        """Answer every request, in order (one round trip per batch for remote services)."""
        ...


@runtime_checkable
class LocalVopProvider(Protocol):
    """A provider that answers in-process, without I/O (the sandbox).

    ``answer_many`` is ``check_many`` run synchronously: the ingestion asks it from the worker
    thread that derives the chunks, so the answers and verdicts are worked out off the event
    loop while it waits on the database.
    """

    def answer_many(self, requests: Sequence[VopRequest]) -> list[VopAnswer]:
        """Answer every request, in order, synchronously; safe to call from any thread."""
        ...


@functools.lru_cache(maxsize=_NAME_CACHE_SIZE)
def _tokens(name: str) -> tuple[str, ...]:
    """The words of a name, worked out once per distinct name (a batch repeats its names)."""
    text = unicodedata.normalize("NFKD", name.translate(_TRANSLITERATION))
    text = "".join(char for char in text if not unicodedata.combining(char))
    text = _APOSTROPHES.sub("", text.lower())
    return tuple(_NON_WORD.sub(" ", text).split())


def _name_tokens(name: str) -> list[str]:
    """Split a name into lower-case, accent-free words without punctuation."""
    return list(_tokens(name))


def normalize_name(name: str) -> str:
    """Normalise a name for comparison: no accents or punctuation, lower case, words sorted."""
    return " ".join(sorted(_name_tokens(name)))


def _expand_initials(tokens: list[str], other: list[str]) -> tuple[list[str], bool]:
    """Replace one-letter words by an unused word of ``other`` that starts with that letter."""
    available = [token for token in other if len(token) > 1 and token not in tokens]
    expanded: list[str] = []
    changed = False
    for token in tokens:
        full = next((word for word in available if len(token) == 1 and word[0] == token), None)
        if full is None:
            expanded.append(token)
        else:
            available.remove(full)
            expanded.append(full)
            changed = True
    return expanded, changed


def _outcome(ratio: float) -> NameOutcome:
    """Classify a similarity ratio."""
    if ratio >= MATCH_THRESHOLD:
        return "match"
    if ratio >= CLOSE_MATCH_THRESHOLD:
        return "close_match"
    return "no_match"


def name_match(expected: str, actual: str | None) -> NameMatch:
    """Compare the expected name with the provider's holder name (fuzzy ratio 0..100)."""
    if actual is not None and actual == expected and expected.strip():
        # The sandbox's (and most banks') usual answer: the same text is a match, no scoring.
        return _MATCH
    expected_tokens = _name_tokens(expected)
    actual_tokens = _name_tokens(actual) if actual is not None else []
    if not expected_tokens or not actual_tokens:
        return NameMatch(0.0, "not_possible")
    ratio = fuzz.ratio(" ".join(sorted(expected_tokens)), " ".join(sorted(actual_tokens)))
    expanded_expected, changed_expected = _expand_initials(expected_tokens, actual_tokens)
    expanded_actual, changed_actual = _expand_initials(actual_tokens, expected_tokens)
    if changed_expected or changed_actual:
        expanded_ratio = fuzz.ratio(
            " ".join(sorted(expanded_expected)), " ".join(sorted(expanded_actual))
        )
        ratio = max(ratio, min(expanded_ratio, INITIAL_MATCH_CAP))
    ratio = round(ratio, 2)
    return NameMatch(ratio, _outcome(ratio))


def score(
    iban_valid: bool,
    bank_identified: bool,
    name_outcome: NameOutcome,
    country_consistent: bool,
    account_status: AccountStatus | str,
) -> int:
    """Score a VOP check 0..100 with the weighting in the module docstring."""
    if not iban_valid:
        return _INVALID_IBAN_SCORE
    if account_status == "unknown_bank":
        return _UNKNOWN_BANK_SCORE
    if account_status == "closed":
        return _CLOSED_SCORE
    total = _NAME_POINTS[name_outcome]
    total += _BANK_POINTS if bank_identified else 0
    total += _COUNTRY_POINTS if country_consistent else 0
    return max(0, min(100, total))


def label_and_result(vop_score: int) -> tuple[ScoreLabel, VopResult]:
    """Return the score's label and result per the VOP score ranges table."""
    if vop_score >= HIGH_SCORE:
        return "high", "verified"
    if vop_score >= POSITIVE_SCORE:
        return "medium", "likely_verified"
    if vop_score >= NEGATIVE_BELOW:
        return "low", "inconclusive"
    if vop_score >= REJECTED_BELOW:
        return "low", "mismatch"
    return "low", "rejected"


def epc_code(result: VopResult | str) -> str | None:
    """Return the EPC VOP answer code for a result; None for ``rejected``."""
    return EPC_CODES.get(result)


def is_positive(vop_score: int) -> bool:
    """Tell whether a score counts as positive (≥ 60)."""
    return vop_score >= POSITIVE_SCORE


def is_negative(vop_score: int) -> bool:
    """Tell whether a score counts as negative (< 40)."""
    return vop_score < NEGATIVE_BELOW


def country_consistent(debtor_country: str | None, iban_country: str | None) -> bool:
    """Tell whether the debtor's country agrees with the IBAN's (a missing one does not clash)."""
    if not debtor_country or not iban_country:
        return True
    return debtor_country.strip().upper() == iban_country.strip().upper()


def risk_class(vop_score: int, amount: Decimal | None, previous_final_decline: bool) -> RiskClass:
    """Classify risk: high below 40 or after a final decline, medium below 80 or over 1000."""
    if vop_score < NEGATIVE_BELOW or previous_final_decline:
        return "high"
    if vop_score < HIGH_SCORE or (amount is not None and amount > 1000):
        return "medium"
    return "low"


def evaluate(
    expected_name: str,
    *,
    iban_valid: bool,
    bank_identified: bool,
    country_is_consistent: bool,
    answer: VopAnswer | None,
) -> VopVerdict:
    """Combine the IBAN facts and a provider's answer (None when not asked) into a verdict."""
    if answer is None or not iban_valid:
        answer = VopAnswer("unknown_bank", None)
    matched = (
        name_match(expected_name, answer.holder_name)
        if answer.account_status == "open"
        else _NOT_POSSIBLE
    )
    value, label, result, code, positive, negative = _grade(
        iban_valid, bank_identified, matched.outcome, country_is_consistent, answer.account_status
    )
    return VopVerdict(
        score=value,
        label=label,
        result=result,
        epc_code=code,
        name_match=matched,
        holder_name=answer.holder_name,
        is_positive=positive,
        is_negative=negative,
    )


VopFacts = tuple[str, bool, bool, bool, "VopAnswer | None"]
"""What ``evaluate`` takes, positionally: expected name, IBAN valid, bank identified, country
consistent, the provider's answer (None when not asked)."""

_UNASKED: Final = VopAnswer("unknown_bank", None)


def evaluate_many(checks: Iterable[VopFacts]) -> list[VopVerdict]:
    """``evaluate`` for a whole batch, equal to it check by check.

    Each distinct (expected name, holder name) pair is compared once and each distinct
    combination of facts graded once, and checks with the same outcome share one verdict
    object (verdicts are frozen), so the per-check cost is a few dictionary lookups.
    """
    matches: dict[tuple[str, str | None], NameMatch] = {}
    verdicts: dict[tuple[Any, ...], VopVerdict] = {}
    out: list[VopVerdict] = []
    append = out.append
    for expected, iban_valid, bank_identified, consistent, answer in checks:
        if answer is None or not iban_valid:
            answer = _UNASKED
        status = answer.account_status
        holder = answer.holder_name
        if status == "open":
            pair = (expected, holder)
            matched = matches.get(pair)
            if matched is None:
                matched = matches[pair] = name_match(expected, holder)
        else:
            matched = _NOT_POSSIBLE
        key = (iban_valid, bank_identified, consistent, status, matched, holder)
        verdict = verdicts.get(key)
        if verdict is None:
            value, label, result, code, positive, negative = _grade(
                iban_valid, bank_identified, matched.outcome, consistent, status
            )
            verdict = verdicts[key] = VopVerdict(
                score=value,
                label=label,
                result=result,
                epc_code=code,
                name_match=matched,
                holder_name=holder,
                is_positive=positive,
                is_negative=negative,
            )
        append(verdict)
    return out


@functools.cache
def _grade(
    iban_valid: bool,
    bank_identified: bool,
    name_outcome: NameOutcome,
    country_is_consistent: bool,
    account_status: str,
) -> tuple[int, ScoreLabel, VopResult, str | None, bool, bool]:
    """Score, label, result, EPC code and signs of a check: a few dozen cases, memoised.

    A whole upload is graded set-wise, so each distinct combination is worked out once.
    """
    value = score(iban_valid, bank_identified, name_outcome, country_is_consistent, account_status)
    label, result = label_and_result(value)
    return value, label, result, epc_code(result), is_positive(value), is_negative(value)


def close_variant(name: str) -> str:
    """Return a deterministic variant of ``name`` that is a close match, not an exact one."""
    words = name.split()
    candidates: list[str] = []
    # Realistic variants first: initials for given names, then a surname left out; long names
    # need several of them before a fuzzy ratio drops under the match threshold.
    for count in range(1, len(words)):
        initials = [f"{word[0]}." for word in words[:count]]
        candidates.append(" ".join([*initials, *words[count:]]))
    for count in range(len(words) - 1, 0, -1):
        candidates.append(" ".join(words[:count]))
    if words:
        longest = max(words, key=len)
        index = words.index(longest)
        for cut in range(1, min(4, len(longest))):
            shortened = [*words[:index], longest[:-cut], *words[index + 1 :]]
            candidates.append(" ".join(shortened))
    candidates.extend(f"{name}{'s' * extra}" for extra in range(1, 4))
    for candidate in candidates:
        if name_match(name, candidate).outcome == "close_match":
            return candidate
    return candidates[0]


def unrelated_name(name: str) -> str:
    """Return a deterministic holder name that does not match ``name``."""
    for candidate in _UNRELATED_NAMES:
        if name_match(name, candidate).outcome == "no_match":
            return candidate
    return _UNRELATED_NAMES[0]


def _checksum_ok(compact: str) -> bool:
    """ISO 13616 mod-97 check: what a bank's directory refuses before any lookup.

    The full registry check (``is_valid_iban``) runs before a request is made; the sandbox only
    needs what a real service would refuse on sight.
    """
    if len(compact) < 15 or not compact.isalnum() or not compact.isascii():
        return False
    return check_digits_ok(compact)


class SandboxVopProvider:
    """A deterministic provider: the asked name matches, except for SANDBOX_TEST_IBANS."""

    async def check(self, iban: str, name: str) -> VopAnswer:
        """Answer as the sandbox table says; an invalid IBAN reaches no bank (unknown_bank)."""
        return self.answer(iban, name)

    async def check_many(self, requests: Sequence[VopRequest]) -> list[VopAnswer]:
        """Answer a batch (CPU only: no round trip)."""
        return self.answer_many(requests)

    def answer_many(self, requests: Sequence[VopRequest]) -> list[VopAnswer]:
        """Answer a batch synchronously (``LocalVopProvider``)."""
        answer = self.answer
        return [answer(iban, name) for iban, name in requests]

    def answer(self, iban: str, name: str) -> VopAnswer:
        """The sandbox's answer for one account, computed synchronously."""
        # normalize_iban returns a stored (electronic-form) IBAN as it is; an "IBAN" label typed
        # along is taken off, as validation takes it off.
        compact = normalize_iban(iban)
        if not _checksum_ok(compact):
            return VopAnswer("unknown_bank", None)
        behaviour = SANDBOX_TEST_IBANS.get(compact)
        if behaviour == "close_match":
            return VopAnswer("open", close_variant(name))
        if behaviour == "no_match":
            return VopAnswer("open", unrelated_name(name))
        if behaviour == "not_possible":
            return VopAnswer("open", None)
        if behaviour == "closed":
            return VopAnswer("closed", None)
        if behaviour == "unknown_bank":
            return VopAnswer("unknown_bank", None)
        return VopAnswer("open", name)
