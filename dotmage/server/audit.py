"""The audit log: every auth, read, write and refusal, without secrets."""

import logging

import peewee as pw

from dotmage.server.db import Audit

log = logging.getLogger("dotmage.server")
REFUSALS = (400, 401, 403, 404, 409, 413, 429)


def record(call, action: str, outcome: str = "ok", app=None, env=None) -> None:
    """One line of the log; the fields are cut to their columns, never refused."""
    Audit.create(
        actor=call.actor[:64],
        action=action[:32],
        app_name=app[:200] if app else None,
        env_name=env[:32] if env else None,
        outcome=outcome[:32],
        address=(call.address or "")[:64],
    )


def refusal(call, ep, url_args: dict, status: int) -> None:
    """A refused request is audited too, unless the database itself failed."""
    if status not in REFUSALS:
        return
    try:
        record(
            call,
            ep.action,
            f"refused:{status}",
            app=url_args.get("app"),
            env=url_args.get("env"),
        )
    except pw.PeeweeException:
        log.warning("could not write the audit entry for a refusal")


def entries(app: str | None, limit: int) -> list[dict]:
    query = Audit.select().order_by(Audit.id.desc()).limit(limit)
    if app:
        query = query.where(Audit.app_name == app)
    return [
        {
            "at": row.at,
            "actor": row.actor,
            "action": row.action,
            "app": row.app_name,
            "env": row.env_name,
            "outcome": row.outcome,
            "address": row.address,
        }
        for row in query
    ]
