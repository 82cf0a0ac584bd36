"""Regenerate migration 0001 from the models (allowed until the first production release).

Usage: ``python scripts/regen_initial_migration.py``. After the first release, add new revisions
with ``alembic revision --autogenerate`` instead of rewriting this one.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from alembic import command

from debtgraph.domain.migrations.runner import alembic_config

VERSIONS = Path(__file__).resolve().parents[1] / "debtgraph/domain/migrations/versions"


def main() -> None:
    """Delete 0001 and autogenerate it against an empty SQLite database."""
    for old in VERSIONS.glob("0001_*.py"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = alembic_config(f"sqlite+aiosqlite:///{tmp}/gen.db")
        command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001")


if __name__ == "__main__":
    main()
