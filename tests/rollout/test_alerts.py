"""Alerts: the log row, the log line, the webhook (a real local HTTP server) and the banner."""

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from faceguard.alerts import MANUAL_ROLLBACK, acknowledge, raise_alert, rollback_banner
from faceguard.log import LogWriter, queries

from .conftest import BETA, STABLE


@pytest.fixture
def webhook():
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers["Content-Type"], json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()
    server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_alert_goes_to_the_log_the_logger_and_the_webhook(settings, webhook, caplog):
    url, received = webhook
    evidence = {"rule": "mean_latency", "restored_version": STABLE, "window": {"minutes": 5}}
    with LogWriter(settings, source="cli", autoingest=False) as log, caplog.at_level(logging.WARNING):
        alert = raise_alert(log, rule="mean_latency", version=BETA, message="too slow", evidence=evidence,
                            webhook_url=url, timeout_s=2.0)
    [(ctype, payload)] = received
    assert ctype == "application/json"
    assert payload["alert_id"] == alert.alert_id and payload["restored_version"] == STABLE
    assert payload["evidence"]["window"] == {"minutes": 5} and payload["version"] == BETA
    row = queries.alerts(settings).iloc[0]
    assert (row["alert_id"], row["rule"], row["message"]) == (alert.alert_id, "mean_latency", "too slow")
    assert "ALERT mean_latency [v1.2.0-beta] too slow" in caplog.text


def test_an_unreachable_webhook_is_logged_not_raised(settings, caplog):
    url = f"http://127.0.0.1:{free_port()}/nobody-listens"
    with caplog.at_level(logging.WARNING):
        alert = raise_alert(None, rule="consecutive_failures", version=BETA, message="m", evidence={},
                            webhook_url=url, timeout_s=0.5)
    assert alert.rule == "consecutive_failures"
    assert f"webhook {url} failed" in caplog.text


def test_banner_shows_the_newest_open_rollback_alert_until_acknowledged(settings):
    assert rollback_banner(settings) is None  # no database yet
    with LogWriter(settings, source="cli", autoingest=False) as log:
        raise_alert(log, rule="consecutive_failures", version=BETA, message="older",
                    evidence={"restored_version": STABLE})
        raise_alert(log, rule="disk_full", version=None, message="not a rollback", evidence={})
        newest = raise_alert(log, rule=MANUAL_ROLLBACK, version=STABLE, message="Restored ... by ann: blurry",
                             evidence={"restored_version": "v1.0.0-prod"})
    banner = rollback_banner(settings)
    assert banner.alert_id == newest.alert_id and banner.title == "Restored to stable version v1.0.0-prod"
    assert banner.message.endswith("blurry") and banner.failed_version == STABLE
    acknowledge(settings, newest.alert_id, "bob")
    older = rollback_banner(settings)
    assert older.message == "older" and older.rule == "consecutive_failures"
    acknowledge(settings, older.alert_id, "bob")
    assert rollback_banner(settings) is None
    acks = queries.alerts(settings)
    assert set(acks.loc[~acks["open"], "acked_by"]) == {"bob"}
    with pytest.raises(ValueError):
        acknowledge(settings, "", "bob")
