"""The demo's reverse proxy: what nginx does in production (docs/deploy/nginx.conf), in the standard library.

It listens on DEMO_PORT in front of gunicorn and passes every request through as it came: the Host
header kept, X-Forwarded-For and X-Forwarded-Proto added, bodies streamed byte for byte both ways
(Stripe's signed webhooks go through it). When the web server refuses the connection or drops it
before answering, the customer gets the static "briefly unavailable" page (templates/50x.html as
rendered by `manage.py render_50x`) with status 502, or 504 when it does not answer in time: what a
customer sees in production while the app is down. Answers the app itself gives, its own 500 and
503 pages included, pass through unchanged.

Small on purpose, and for the demo only: one connection to the web server per request, and request
bodies must carry a Content-Length (browsers and Stripe always send one; chunked uploads get 411).
"""

import http.client
import http.server
import sys
import threading

CHUNK = 64 * 1024
# Headers about one connection, not the message (RFC 9110 7.6.1): never passed on. Expect is
# answered here (BaseHTTPRequestHandler sends the 100 Continue itself).
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te",
    "trailer", "transfer-encoding", "upgrade", "expect",
})
SET_BY_PROXY = frozenset({"x-forwarded-for", "x-forwarded-proto"})


class DemoProxy(http.server.ThreadingHTTPServer):
    """Listens on `listen` (host, port), forwards to `upstream` (host, port); `page` is the 50x page's bytes."""

    request_queue_size = 64
    daemon_threads = True

    def __init__(self, listen, upstream, page: bytes, *, timeout=60.0, log=None):
        self.upstream = upstream
        self.page = page
        self.upstream_timeout = timeout  # above gunicorn's worker timeout, as in nginx.conf
        self.log = log or (lambda message: None)
        self.thread = None
        super().__init__(listen, ProxyHandler)

    @property
    def url(self):
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self):
        self.thread = threading.Thread(target=self.serve_forever, args=(0.1,), name="demo-proxy", daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.thread is not None:
            self.shutdown()
            self.thread = None
        self.server_close()

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a browser that left is no news
            super().handle_error(request, client_address)


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive with the browser, as nginx does
    timeout = 75  # an idle keep-alive connection is closed after this many seconds

    def proxy(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.send_error(411, "Send a Content-Length")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length < 0:
                raise ValueError(length)
        except ValueError:
            self.send_error(400, "Bad Content-Length")
            return

        upstream = http.client.HTTPConnection(*self.server.upstream, timeout=self.server.upstream_timeout)
        try:
            try:
                upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            except (http.client.InvalidURL, ValueError):
                self.send_error(400, "Bad request line")
                return
            self.send_request_head(upstream)
            if not self.send_request_body(upstream, length):
                return
            response = upstream.getresponse()
        except TimeoutError:
            self.unavailable(504, "did not answer in time")
            return
        except (OSError, http.client.HTTPException) as exc:
            self.unavailable(502, f"is not answering ({exc.__class__.__name__}: {exc})")
            return
        try:
            self.relay(response)
        finally:
            upstream.close()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = proxy

    def send_request_head(self, upstream):
        for name, value in self.headers.items():
            if name.lower() not in HOP_BY_HOP and name.lower() not in SET_BY_PROXY:
                upstream.putheader(name, value)  # Host among them, unchanged
        client = self.client_address[0]
        earlier = ", ".join(self.headers.get_all("X-Forwarded-For") or [])
        upstream.putheader("X-Forwarded-For", f"{earlier}, {client}" if earlier else client)
        upstream.putheader("X-Forwarded-Proto", "http")
        upstream.putheader("Connection", "close")
        upstream.endheaders()

    def send_request_body(self, upstream, length):
        """Streams exactly `length` bytes from the client to the web server; False if the client left."""
        remaining = length
        while remaining > 0:
            try:
                chunk = self.rfile.read(min(CHUNK, remaining))
            except OSError:
                chunk = b""
            if not chunk:
                self.close_connection = True
                return False
            upstream.send(chunk)
            remaining -= len(chunk)
        return True

    def relay(self, response):
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        has_body = self.command != "HEAD" and response.status not in (204, 304) and response.status >= 200
        if has_body and response.getheader("Content-Length") is None:
            self.send_header("Connection", "close")  # no length given: the body ends when the connection does
        self.end_headers()
        if not has_body:
            return
        try:
            while chunk := response.read1(CHUNK):
                self.wfile.write(chunk)
        except (OSError, http.client.HTTPException):
            # The web server died mid-answer, or the browser left: too late for a page, so the
            # connection is closed and the browser sees an incomplete response, as with nginx.
            self.close_connection = True

    def unavailable(self, status, why):
        self.server.log(f"the web server {why}: answered {self.command} with the 'briefly unavailable' page ({status})")
        page = self.server.page
        self.send_response_only(status)
        self.send_header("Date", self.date_time_string())
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Retry-After", "30")
        self.send_header("Connection", "close")  # part of a request body may still be unread
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(page)

    def log_message(self, format, *args):
        pass  # gunicorn logs every request; the proxy speaks only about the web server being down
