"""``uvicorn debtgraph.server.asgi:app``: the app configured from the environment."""

from debtgraph.server.app import create_app

app = create_app()
