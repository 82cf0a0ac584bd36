"""The committed SDL and the migration history both match the code."""

from __future__ import annotations

from debtgraph.domain.core.database import create_engine
from debtgraph.domain.migrations.runner import drift
from debtgraph.schema.export import SDL_PATH, current_sdl


def test_committed_sdl_matches_the_schema() -> None:
    assert SDL_PATH.read_text() == current_sdl(), (
        "schema.graphql drifted: run python -m debtgraph.schema.export and commit it"
    )


async def test_migrations_match_the_models(migrated: str) -> None:
    engine = create_engine(migrated)
    try:
        assert await drift(engine) == []
    finally:
        await engine.dispose()
