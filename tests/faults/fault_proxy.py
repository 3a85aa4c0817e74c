"""An HTTP proxy in front of a real server that a test can make misbehave, as a network or a server would.

The server behind it (moto's S3, MLflow) keeps its state: the proxy can answer errors, hang up without
an answer, or stop listening altogether (connections refused) and come back on the same port, which
stopping the in-memory S3 server itself could not do without losing what it stored.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# A policy sees each request (method, path) and answers None (forward it), a status code (answer
# that, with no body from the server) or DROP (close the connection without an answer).
DROP = -1
Policy = Callable[[str, str], int | None]
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
}


def forward(method: str, path: str) -> int | None:
    return None


@dataclass
class FaultProxy:
    upstream: str
    port: int
    policy: Policy = forward
    seen: list[tuple[str, str, int | None]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _relay(self) -> None:
                body = self._body()
                verdict = proxy.policy(self.command, self.path)
                with proxy._lock:
                    proxy.seen.append((self.command, self.path, verdict))
                if verdict == DROP:
                    self.close_connection = True
                    self.connection.close()
                    return
                if verdict is not None:
                    self.send_response(verdict)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status, headers, payload = proxy._ask_upstream(self.command, self.path, self.headers, body)
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        chunk = self.rfile.read(size + 2)[:size]
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass  # trailers
                            return b"".join(chunks)
                        chunks.append(chunk)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _relay

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening: from now on connections are refused, as by a stopped server."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _ask_upstream(
        self, method: str, path: str, headers: object, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        target = urlsplit(self.upstream)
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        try:
            sent = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}  # type: ignore[attr-defined]
            sent["Content-Length"] = str(len(body))
            conn.request(method, path, body=body if body or method in ("PUT", "POST") else None, headers=sent)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()
