"""`orchestrator serve`: the webhook receiver and REST API, on uvicorn."""

from __future__ import annotations

import click

from orchestrator.cli.options import root_option
from orchestrator.settings import DATABASE_URL_ENV, default_database_url


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free one)."
)
@click.option(
    "--tls-cert", type=click.Path(exists=True, dir_okay=False), default=None, help="TLS certificate (PEM)."
)
@click.option(
    "--tls-key", type=click.Path(exists=True, dir_okay=False), default=None, help="TLS private key (PEM)."
)
@click.option(
    "--database-url",
    envvar=DATABASE_URL_ENV,
    default=default_database_url,
    show_default="$ORCHESTRATOR_DATABASE_URL, else SQLite in the state folder",
    help="State database.",
)
@root_option
def serve_command(
    host: str, port: int, tls_cert: str | None, tls_key: str | None, database_url: str, root: str | None
) -> None:
    """Serve webhooks and the REST API (`/api/v1`, `/healthz`, `/readyz`)."""
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    import uvicorn

    from orchestrator.server.app import create_app
    from orchestrator.server.settings import ServerSettings
    from orchestrator.server.webhook_settings import WebhookSettings
    from orchestrator.settings import project_root, state_dir

    app = create_app(
        ServerSettings(
            root=project_root(root),
            state_dir=state_dir(),
            database_url=database_url,
            webhooks=WebhookSettings.from_environment(),
        )
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=host, port=port, ssl_certfile=tls_cert, ssl_keyfile=tls_key, log_level="warning"
        )
    )
    # Long-lived responses (the dashboard's live streams) end themselves once the server is stopping, so
    # a SIGTERM is not held up by an open browser tab: uvicorn waits for every response to finish.
    app.state.stopping = lambda: server.should_exit
    server.run()
