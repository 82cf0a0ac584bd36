"""VOP wiring: settings and the provider they name."""

from __future__ import annotations

import pytest

from debtgraph.domain.payments.providers import HttpVopProvider, provider_from_settings
from debtgraph.domain.payments.vop import SandboxVopProvider
from debtgraph.settings import ConfigError, Settings


def test_settings_read_the_vop_provider() -> None:
    settings = Settings.from_env(
        {"VOP_PROVIDER": "HTTP", "VOP_PROVIDER_URL": "http://127.0.0.1:9/vop",
         "VOP_PROVIDER_TIMEOUT": "2.5", "VOP_PROVIDER_BATCH": "50"}
    )  # fmt: skip
    settings.check()
    assert (settings.vop_provider, settings.vop_provider_timeout_seconds) == ("http", 2.5)
    provider = provider_from_settings(
        settings.vop_provider,
        settings.vop_provider_url,
        timeout=settings.vop_provider_timeout_seconds,
        batch_size=settings.vop_provider_batch,
    )
    assert isinstance(provider, HttpVopProvider)
    assert (provider.url, provider.batch_size) == ("http://127.0.0.1:9/vop", 50)
    default = Settings.from_env({})
    assert isinstance(provider_from_settings(default.vop_provider, None, timeout=1, batch_size=1),
                      SandboxVopProvider)  # fmt: skip


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"VOP_PROVIDER": "http"}, "VOP_PROVIDER=http needs VOP_PROVIDER_URL."),
        ({"VOP_PROVIDER": "carrier-pigeon"}, "VOP_PROVIDER must be sandbox or http."),
        ({"VOP_PROVIDER_BATCH": "0"}, "VOP_PROVIDER_BATCH must be at least 1."),
    ],
)
def test_bad_vop_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env).check()
