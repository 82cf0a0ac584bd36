"""``python -m debtgraph.schema.export``: write the committed SDL (``--check`` fails on drift)."""

from __future__ import annotations

import sys
from pathlib import Path

from debtgraph.schema import schema

SDL_PATH = Path(__file__).with_name("schema.graphql")


def current_sdl() -> str:
    """The SDL of the schema as the code defines it."""
    return str(schema).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the SDL, or with ``--check`` report whether the committed one is current."""
    args = sys.argv[1:] if argv is None else argv
    sdl = current_sdl()
    if "--check" in args:
        if not SDL_PATH.exists() or SDL_PATH.read_text() != sdl:
            print("schema.graphql is out of date: run python -m debtgraph.schema.export")
            return 1
        print("schema.graphql is current")
        return 0
    SDL_PATH.write_text(sdl)
    print(f"wrote {SDL_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
