"""`finks mcp`, the command: the server (and the MCP SDK behind it) load only when it starts."""

from __future__ import annotations

import typer

from core.errors import ConfigError
from finks.payloads import Workspace


def mcp(ctx: typer.Context) -> None:
    """Serve finks to coding agents over MCP on stdio: tools, resources, progress.

    Tools return the same documents as --json. Register it with a client, e.g.
    'claude mcp add finks -- finks mcp'; the global --sessions picks another plan.
    """
    try:
        from finks.mcp import serve
    except ImportError as exc:
        raise ConfigError(f"'finks mcp' needs the MCP SDK: {exc}", hint="pip install 'mcp>=2.3,<3'") from None
    serve(Workspace(ctx.find_root().params.get("sessions")))
