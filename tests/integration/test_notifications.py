"""Notifications reach a real SMTP server and a real HTTP server (Slack's webhook and a plain one)
through Airflow's notifiers and connections; a channel that is down fails nothing."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from tests.receivers import Mailbox, Received, dead_url, http_server, smtp_server

from mlops.airflow.notifications import Notice, run_url, send
from mlops.config.pipeline import ALL_EVENTS, Notifications

BASE = "http://airflow.example.test:8080"
NOTICE = Notice(
    pipeline="churn",
    event="champion_changed",
    title="champion is now version 4 (promotion)",
    day="2026-03-02",
    version="4",
    details=["previous champion: 3"],
    links={
        "Airflow run": run_url(BASE, "churn_train", "scheduled__2026-03-02T04:00:00+00:00") or "",
        "MLflow version": "http://mlflow.example.test:5000/#/models/churn/versions/4",
    },
)


def channels(web: Received, *, email: list[str], slack: list[str], webhook: list[str]) -> Notifications:
    chosen: dict = {}
    if email:
        chosen["email"] = {
            "conn_id": "mlops_smtp",
            "to": ["team@example.com"],
            "from_email": "mlops@example.com",
            "events": email,
        }
    if slack:
        chosen["slack"] = {"conn_id": "mlops_slack", "events": slack}
    if webhook:
        chosen["webhook"] = {"url": web.url("/hook"), "events": webhook}
    return Notifications.model_validate(chosen)


@pytest.fixture
def endpoints(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Mailbox, Received]]:
    with smtp_server() as box, http_server() as web:
        monkeypatch.setenv("AIRFLOW_CONN_MLOPS_SMTP", box.connection())
        monkeypatch.setenv(
            "AIRFLOW_CONN_MLOPS_SLACK",
            json.dumps({"conn_type": "slackwebhook", "password": web.url("/slack")}),
        )
        yield box, web


def test_each_channel_receives_the_message_with_links_that_open_in_a_browser(
    endpoints: tuple[Mailbox, Received],
) -> None:
    box, web = endpoints
    every = list(ALL_EVENTS)

    outcome = send(channels(web, email=every, slack=every, webhook=every), NOTICE)

    assert outcome == {"email": "sent", "slack": "sent", "webhook": "sent"}
    [mail] = box.messages
    assert mail["Subject"] == "[churn] champion is now version 4 (promotion) (day 2026-03-02 v4)"
    assert mail["To"] == "team@example.com" and mail["From"] == "mlops@example.com"
    body = Mailbox.html(mail)
    run = f"{BASE}/dags/churn_train/runs/scheduled__2026-03-02T04:00:00%2B00:00"
    assert f'<a href="{run}">Airflow run</a>' in body
    assert '<a href="http://mlflow.example.test:5000/#/models/churn/versions/4">MLflow version</a>' in body
    assert "previous champion: 3" in body
    [slack] = web.at("/slack")
    assert slack["text"].startswith("*[churn] champion is now version 4 (promotion)")
    assert f"<{run}|Airflow run>" in slack["text"]
    [hook] = web.at("/hook")
    assert hook["event"] == "champion_changed" and hook["pipeline"] == "churn"
    assert (hook["day"], hook["version"]) == ("2026-03-02", "4")
    assert hook["links"] == {"Airflow run": run, "MLflow version": NOTICE.links["MLflow version"]}


def test_text_from_the_data_reaches_each_channel_as_text(endpoints: tuple[Mailbox, Received]) -> None:
    """A rejected day's notice quotes a landed value: it cannot add mail headers, markup or Slack links."""
    box, web = endpoints
    hostile = Notice(
        pipeline="churn",
        event="rejected_day",
        title="day rejected: unexpected column <img src=x onerror=alert(1)>\nBcc: victim@example.com",
        day="2026-03-02",
        details=["<!channel> see <http://evil.example.test|the fix>", "<script>alert(1)</script>"],
    )

    assert send(channels(web, email=["rejected_day"], slack=["rejected_day"], webhook=[]), hostile) == {
        "email": "sent",
        "slack": "sent",
    }

    [mail] = box.messages
    assert mail["Bcc"] is None and "\n" not in mail["Subject"]
    assert mail["Subject"].endswith("Bcc: victim@example.com (day 2026-03-02)")
    body = Mailbox.html(mail)
    assert "<img" not in body and "<script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    [slack] = web.at("/slack")
    assert "<!channel>" not in slack["text"] and "<http://evil" not in slack["text"]
    assert "&lt;!channel&gt; see &lt;http://evil.example.test|the fix&gt;" in slack["text"]


def test_an_event_goes_only_to_the_channels_that_chose_it(endpoints: tuple[Mailbox, Received]) -> None:
    box, web = endpoints
    notifications = channels(web, email=["task_failed"], slack=["champion_changed"], webhook=["drift_fired"])

    outcome = send(notifications, NOTICE)

    assert outcome == {"slack": "sent"}
    assert box.messages == [] and web.at("/hook") == [] and len(web.at("/slack")) == 1


def test_a_channel_that_is_down_is_logged_and_the_others_still_send(
    endpoints: tuple[Mailbox, Received], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    box, web = endpoints
    closed = dead_url()
    port = int(closed.rsplit(":", 1)[1].split("/")[0])
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_SMTP", json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": port, "extra": {"disable_tls": True, "disable_ssl": True, "timeout": 5, "retry_limit": 1}}))  # fmt: skip
    every = list(ALL_EVENTS)
    notifications = channels(web, email=every, slack=every, webhook=every).model_copy(
        update={
            "webhook": Notifications.model_validate({"webhook": {"url": closed, "events": every}}).webhook
        }
    )

    with caplog.at_level(logging.WARNING, logger="mlops.airflow.notifications"):
        outcome = send(notifications, NOTICE)

    assert outcome["slack"] == "sent" and len(web.at("/slack")) == 1
    assert outcome["email"].startswith("failed:") and outcome["webhook"].startswith("failed:")
    assert box.messages == []
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "champion_changed notification by email was not sent" in logged
    assert "champion_changed notification by webhook was not sent" in logged


def test_a_missing_connection_fails_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_MLOPS_SLACK", raising=False)
    notifications = Notifications.model_validate(
        {"slack": {"conn_id": "mlops_slack", "events": ["champion_changed"]}}
    )

    outcome = send(notifications, NOTICE)

    assert outcome["slack"].startswith("failed:") and "mlops_slack" in outcome["slack"]


def test_a_channel_without_events_and_an_unknown_event_are_config_errors() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="events"):
        Notifications.model_validate({"webhook": {"url": "http://x.test/hook", "events": []}})
    with pytest.raises(ValidationError, match="drift_fire"):
        Notifications.model_validate({"webhook": {"url": "http://x.test/hook", "events": ["drift_fire"]}})
    with pytest.raises(ValidationError, match="url"):
        Notifications.model_validate({"webhook": {"url": "ftp://x.test/hook", "events": ["drift_fired"]}})
