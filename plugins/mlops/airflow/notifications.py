"""Notifications: one message per event, sent to the channels the pipeline's ``notifications:`` chose.

Every operator builds a ``Notice`` (pipeline, day or version, what happened, links) and hands it to
``send``; the channels are Airflow's own notifiers over connections (email through the SMTP
provider, Slack through an incoming-webhook connection) and a plain HTTP webhook with a JSON body.
A channel that cannot be reached is logged and skipped: a notification never fails a task.
Links are absolute, from the deployment's ``[api] base_url``, so they open from a mail client.
The providers are imported only when a channel sends.
"""

from __future__ import annotations

import html
import json
import logging
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from mlops.config.pipeline import EmailChannel, Notifications, SlackChannel, WebhookChannel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notice:
    """What one notification says, whichever channel carries it."""

    pipeline: str
    event: str
    title: str  # one line: what happened
    day: str | None = None
    version: str | None = None
    details: list[str] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)  # label -> absolute URL

    @property
    def subject(self) -> str:
        where = " ".join(
            p for p in (self.day and f"day {self.day}", self.version and f"v{self.version}") if p
        )
        subject = f"[{self.pipeline}] {self.title}" + (f" ({where})" if where else "")
        # One line: a line break from the data would start new mail headers.
        return " ".join(subject.split())

    def text(self) -> str:
        lines = [self.subject, *self.details]
        lines += [f"{label}: {url}" for label, url in self.links.items()]
        return "\n".join(lines)

    def html(self) -> str:
        items = "".join(f"<li>{html.escape(d)}</li>" for d in self.details)
        links = "".join(
            f'<li><a href="{html.escape(url, quote=True)}">{html.escape(label)}</a></li>'
            for label, url in self.links.items()
        )
        return (
            f"<p><b>{html.escape(self.subject)}</b></p>"
            + (f"<ul>{items}</ul>" if items else "")
            + (f"<p>Links:</p><ul>{links}</ul>" if links else "")
        )

    def payload(self) -> dict[str, Any]:
        return {**asdict(self), "subject": self.subject}


def run_url(base_url: str | None, dag_id: str, run_id: str) -> str | None:
    """The Airflow UI page of a DAG run, or None when the deployment has no public ``base_url``."""
    if not base_url:
        return None
    return f"{base_url.rstrip('/')}/dags/{dag_id}/runs/{quote(run_id, safe=':')}"


def absolute_links(links: Mapping[str, str | None]) -> dict[str, str]:
    """The links that a mail client can open: absolute http(s) URLs only; the rest are logged."""
    kept = {}
    for label, url in links.items():
        if url and url.startswith(("http://", "https://")):
            kept[label] = url
        elif url:
            log.warning("notification link %r is not absolute (%s): set [api] base_url", label, url)
    return kept


def _email(channel: EmailChannel, notice: Notice, context: Any) -> None:
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    SmtpNotifier(
        to=channel.to,
        from_email=channel.from_email,
        subject=notice.subject,
        html_content=notice.html(),
        smtp_conn_id=channel.conn_id,
    ).notify(context)


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack(channel: SlackChannel, notice: Notice, context: Any) -> None:
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    # Slack's mrkdwn link syntax: <url|label>. Text from the data (a category, a file name) is escaped
    # as Slack asks, so it cannot forge a link or a mention.
    links = " | ".join(
        f"<{_slack_escape(url)}|{_slack_escape(label)}>" for label, url in notice.links.items()
    )
    lines = [f"*{_slack_escape(notice.subject)}*", *map(_slack_escape, notice.details)]
    text = "\n".join([*lines, *([links] if links else [])])
    SlackWebhookNotifier(slack_webhook_conn_id=channel.conn_id, text=text).notify(context)


def _webhook(channel: WebhookChannel, notice: Notice, context: Any) -> None:
    body = json.dumps(notice.payload(), sort_keys=True).encode()
    request = urllib.request.Request(channel.url, body, {"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=channel.timeout_seconds) as response:
        response.read()


_SENDERS: dict[str, Callable[[Any, Notice, Any], None]] = {
    "email": _email,
    "slack": _slack,
    "webhook": _webhook,
}


def send(notifications: Notifications, notice: Notice, context: Any = None) -> dict[str, str]:
    """Send ``notice`` on every channel that chose its event; returns ``{channel: "sent" | error}``.

    Never raises: a channel that fails is logged as a warning and the others still send.
    """
    outcome: dict[str, str] = {}
    for name in notifications.channels_for(notice.event):
        try:
            _SENDERS[name](getattr(notifications, name), notice, context or {})
        except Exception as exc:  # a notification never fails the task that sends it
            first = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
            log.warning(
                "%s: the %s notification by %s was not sent: %s", notice.pipeline, notice.event, name, first
            )
            outcome[name] = f"failed: {type(exc).__name__}: {first}"
        else:
            outcome[name] = "sent"
    return outcome
