"""One notifier for the pipeline: always a log line, plus SNS in the cloud.

The alerts topic is `<project>-<env>-alerts` (created by the infrastructure
program); we look its ARN up instead of hard-coding an account id.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from core.clock import now_iso

if TYPE_CHECKING:
    from core.settings import Settings

Level = Literal["info", "warning", "error"]
log = logging.getLogger("finks.notify")


def topic_name(settings: Settings) -> str:
    return f"{settings.project}-{settings.env}-alerts"


@dataclass
class Notifier:
    settings: Settings
    sns_topic_arn: str | None = None
    sent: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def for_settings(cls, settings: Settings, *, sns: bool | None = None) -> Notifier:
        """Log-only locally; SNS when running in AWS (or when asked to, e.g. against moto)."""
        use_sns = (not settings.is_local) if sns is None else sns
        return cls(settings, find_topic_arn(settings) if use_sns else None)

    def send(self, subject: str, message: str, *, level: Level = "info", details: dict[str, Any] | None = None) -> dict[str, Any]:
        note = {"subject": subject, "message": message, "level": level, "env": self.settings.env, "details": details or {}}
        _log(level, subject, message)
        if self.settings.is_local:
            # A local trail you can tail (and tests can read); the cloud trail is SNS.
            path = self.settings.home / "logs" / "notifications.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as fh:
                fh.write(json.dumps(note | {"at": now_iso()}, default=str) + "\n")
        if self.sns_topic_arn:
            from core.aws import client as aws_client

            # SNS subjects are limited to 100 printable ASCII characters.
            safe_subject = subject.encode("ascii", "replace").decode()[:100]
            response = aws_client(self.settings, "sns").publish(
                TopicArn=self.sns_topic_arn,
                Subject=safe_subject,
                Message=json.dumps(note, default=str),
                MessageAttributes={"level": {"DataType": "String", "StringValue": level}},
            )
            note["sns_message_id"] = response["MessageId"]
        self.sent.append(note)
        return note


def read_local(settings: Settings) -> list[dict[str, Any]]:
    """The local notification trail, oldest first."""
    path = settings.home / "logs" / "notifications.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _log(level: Level, subject: str, message: str) -> None:
    text = f"{subject}: {message}"
    try:
        from prefect import get_run_logger

        logger: Any = get_run_logger()
    except Exception:  # noqa: BLE001 - outside a flow or task run: the module logger
        logger = log
    getattr(logger, level)(text)


def find_topic_arn(settings: Settings) -> str:
    from core.aws import client as aws_client
    from core.errors import ConfigError

    name = topic_name(settings)
    sns = aws_client(settings, "sns")
    for page in sns.get_paginator("list_topics").paginate():
        for topic in page.get("Topics", []):
            if topic["TopicArn"].rsplit(":", 1)[-1] == name:
                return str(topic["TopicArn"])
    raise ConfigError(
        f"SNS topic {name} not found in {settings.region}",
        hint="deploy the monitoring stack (S11) or create the topic before running the pipeline",
    )
