"""`finks claim` and `finks release`: who is on which session, for how long.

Loaded lazily by name (finks/cligroup.py), like the platform commands; the
claims themselves live in the history (finks/state.py).
"""

from __future__ import annotations

from typing import Annotated

import typer

from finks import payloads
from finks.cliopts import EnvOpt, JsonOpt, OwnerOpt, echo_json, workspace


def claim(
    ctx: typer.Context,
    sid: str,
    owner: OwnerOpt = None,
    lease: Annotated[str, typer.Option("--lease", help="how long the claim holds unless renewed: 30m, 4h, 1d")] = "4h",
    steal: Annotated[bool, typer.Option("--steal", help="take over another owner's live claim")] = False,
    env: EnvOpt = "local",
    as_json: JsonOpt = False,
) -> None:
    """Say you are on a session: status shows it claimed, next offers it last, others' runs warn.

    Claiming your own claim again renews its lease. Another owner's live claim
    is refused (exit 1, naming the holder and its expiry) unless --steal. When
    the lease expires the session is free again.
    """
    from finks.claims import default_owner, parse_lease

    seconds = parse_lease(lease)
    w = workspace(ctx)
    s = w.plan().session(sid)
    who = owner or default_owner()
    took, replaced = w.store(env).claim(s.id, who, seconds, steal=steal)
    doc = payloads.claim_(env, took, replaced)
    if as_json:
        echo_json("claim", doc)
        return
    how = "" if replaced is None else " (renewed)" if replaced.owner == who else f" (taken over from {replaced.owner})"
    typer.echo(f"{s.id} claimed by {who} on {env} until {took.expires_at} ({lease}){how}")


def release(ctx: typer.Context, sid: str, owner: OwnerOpt = None, env: EnvOpt = "local", as_json: JsonOpt = False) -> None:
    """Give up your claim on a session (exit 1 if someone else holds it)."""
    from finks.claims import default_owner

    w = workspace(ctx)
    s = w.plan().session(sid)
    who = owner or default_owner()
    released = w.store(env).release(s.id, who)
    doc = payloads.release(env, s.id, who, released)
    if as_json:
        echo_json("claim", doc)
        return
    typer.echo(f"{s.id} released by {who} on {env}" if released else
               f"{s.id} is not claimed on {env}: nothing to release")
