"""What the suite's fuzzers share: Hypothesis runs bounded and reproducible in CI."""

from __future__ import annotations

from hypothesis import HealthCheck, Phase
from hypothesis import settings as hsettings


def bounded(examples: int) -> hsettings:
    """``examples`` derandomized examples, no example database, no deadline, no shrinking.

    Shrinking is off because a failure's first example is what the report names; health checks
    are off because the generated inputs are HTTP requests against a real app, slow by nature.
    """
    return hsettings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
