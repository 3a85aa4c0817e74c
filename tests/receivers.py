"""Real local endpoints that notifications are sent to: an SMTP server (aiosmtpd) and an HTTP server
(the standard library's, in a thread) standing in for Slack's incoming webhook and a plain webhook.
Each keeps what it received; the URL of a closed port stands for an endpoint that is down.
"""

from __future__ import annotations

import email
import email.policy
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.embedded_stack import free_port


@dataclass
class Mailbox:
    port: int
    messages: list[EmailMessage] = field(default_factory=list)

    def connection(self) -> str:
        """An Airflow smtp connection (JSON, for ``AIRFLOW_CONN_<ID>``) to this server, no TLS."""
        return json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": self.port,
                "extra": {"disable_tls": True, "disable_ssl": True, "timeout": 10, "retry_limit": 1},
            }
        )

    @staticmethod
    def html(message: EmailMessage) -> str:
        part = message.get_body(preferencelist=("html", "plain"))
        assert part is not None, f"no text body in {message!r}"
        return part.get_content()


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    from aiosmtpd.controller import Controller

    box = Mailbox(free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            box.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@dataclass
class Received:
    port: int
    posts: list[tuple[str, Any]] = field(default_factory=list)  # (path, parsed JSON body)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Any]:
        return [body for where, body in self.posts if where == path]


@contextmanager
def http_server() -> Iterator[Received]:
    """Answers every POST with 200 ``ok`` (what Slack's webhook answers) and keeps its JSON body."""
    received = Received(free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            received.posts.append((self.path, json.loads(self.rfile.read(length) or b"null")))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", received.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()


def dead_url() -> str:
    """A URL nobody listens on."""
    return f"http://127.0.0.1:{free_port()}/hook"
