"""Webhook rules that need no database: the backoff schedule, signatures, the URL guard."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError

from debtgraph.domain.webhooks import deliveries, signing, targets


def test_backoff_is_exponential_for_about_three_days() -> None:
    delays = [deliveries.retry_delay(n) for n in range(1, deliveries.MAX_ATTEMPTS)]
    assert delays[:3] == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]
    total = sum(delays, timedelta(0))  # type: ignore[arg-type]
    assert timedelta(days=2, hours=18) < total < timedelta(days=3)
    assert deliveries.retry_delay(deliveries.MAX_ATTEMPTS) is None


def test_headers_verify_with_either_secret_during_a_rotation() -> None:
    new, old = signing.new_secret(), signing.new_secret()
    body = b'{"id":"evt_1","type":"user.updated"}'
    headers = signing.Signer([new, old]).headers("evt_1", datetime.now(UTC), body)
    for secret in (new, old):
        StandardWebhook(secret).verify(body, headers)
    digests = headers["Cleavr-Signature"].split(",")
    assert digests == [hmac.new(s.encode(), body, hashlib.sha256).hexdigest() for s in (new, old)]
    with pytest.raises(WebhookVerificationError):
        StandardWebhook(signing.new_secret()).verify(body, headers)


def test_the_previous_secret_signs_only_until_it_expires() -> None:
    now = datetime(2026, 11, 22, tzinfo=UTC)
    later = now + signing.PREVIOUS_SECRET_TTL
    assert signing.signing_secrets("a", "b", later, now) == ["a", "b"]
    assert signing.signing_secrets("a", "b", later, later) == ["a"]
    assert signing.signing_secrets("a", None, None, now) == ["a"]


@pytest.mark.parametrize(
    "url",
    [
        "https://0.0.0.0/",
        "https://100.64.0.1/",
        "https://192.168.1.1/",
        "https://172.16.0.1/",
        "https://224.0.0.1/",
        "https://[fe80::1]/",
        "https://[fc00::1]/",
        "https://[::]/",
        # IPv6 forms that carry a private IPv4 address, and IPv6 ranges that are not global.
        "https://[::ffff:127.0.0.1]/",
        "https://[::7f00:1]/",  # IPv4-compatible 127.0.0.1
        "https://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
        "https://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/",  # Teredo, client 10.0.0.1
        "https://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
        "https://[64:ff9b:1::1]/",  # local-use NAT64: the site decides where it goes
        "https://[fec0::1]/",  # site-local
    ],
)
async def test_non_public_addresses_are_refused(url: str) -> None:
    with pytest.raises(targets.TargetRefused) as refused:
        await targets.check(url, allow_private=False)
    assert refused.value.reason == "url_private"


async def test_private_addresses_pass_only_when_allowed() -> None:
    target = await targets.check("http://127.0.0.1:8080/h", allow_private=True)
    assert (target.scheme, target.port, str(target.addresses[0])) == ("http", 8080, "127.0.0.1")


async def test_a_non_ascii_host_is_kept_in_punycode(monkeypatch: pytest.MonkeyPatch) -> None:
    # A Host header and SNI take ASCII only: a Unicode host would pass registration and then
    # fail every send. DNS is replaced here because .example names never resolve.
    assert targets.parse("https://Bücher.example/x?a=1", allow_private=False) == (
        "https",
        "xn--bcher-kva.example",
        443,
        "/x?a=1",
    )

    async def resolve(host: str, port: int) -> tuple[object, ...]:
        assert host == "xn--bcher-kva.example"
        return (ipaddress.ip_address("93.184.216.34"),)

    monkeypatch.setattr(targets, "_resolve", resolve)
    target = await targets.check(" https://bücher.example:8443/h ", allow_private=False)
    assert target.url == "https://xn--bcher-kva.example:8443/h"
    assert target.host == "xn--bcher-kva.example"


def test_a_host_idna_cannot_encode_is_refused() -> None:
    with pytest.raises(targets.TargetRefused) as refused:
        targets.parse(f"https://{'ü' * 70}.de/", allow_private=False)
    (error,) = refused.value.errors
    assert (error.field, error.code) == ("url", "invalid_url")
    assert "internationalised" in error.message
