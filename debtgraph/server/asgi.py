"""``uvicorn debtgraph.server.asgi:app``: the app configured from the environment.

``debtgraph serve`` uses :func:`served_app` instead, as a factory: with ``--workers N`` each
process builds its own app (engine, Redis clients) and logs as the command does.
"""

from starlette.applications import Starlette

from debtgraph.server.app import create_app
from debtgraph.server.logging import configure_logging
from debtgraph.settings import Settings


def served_app() -> Starlette:
    """The app of one ``debtgraph serve`` process."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    return create_app(settings)


def __getattr__(name: str) -> Starlette:
    # Built on first use, so importing the module for served_app builds no second app.
    if name == "app":
        app = create_app()
        globals()["app"] = app
        return app
    raise AttributeError(name)
