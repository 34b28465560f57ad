"""The demo's reverse proxy (scripts/demo_proxy.py), in front of a real tiny HTTP server and of nothing."""

import http.client
import http.server
import json
import socket
import threading

import pytest

from config.errors import unavailable_page
from scripts.demo_proxy import DemoProxy
from tests.ports import free_port

EVERY_BYTE = bytes(range(256)) * 300  # 76,800 bytes: more than one read, nothing text-safe about it


class EchoHandler(http.server.BaseHTTPRequestHandler):
    """Answers with what it received: the request line and headers as JSON in a header, the body as the body."""

    protocol_version = "HTTP/1.1"

    def answer(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        seen = {"method": self.command, "path": self.path, "headers": [[k, v] for k, v in self.headers.items()]}
        self.send_response(201)
        self.send_header("X-Seen", json.dumps(seen))
        self.send_header("Set-Cookie", "a=1; Path=/")
        self.send_header("Set-Cookie", "b=2; Path=/")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_HEAD = answer

    def log_message(self, *args):
        pass


class StreamHandler(EchoHandler):
    """Answers HTTP/1.0 style: no Content-Length, the body ends when the connection closes."""

    protocol_version = "HTTP/1.0"

    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        for _ in range(3):
            self.wfile.write(EVERY_BYTE)


@pytest.fixture
def upstream():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def start_proxy(upstream_port, **options):
    return DemoProxy(("127.0.0.1", 0), ("127.0.0.1", upstream_port), unavailable_page().encode(), **options).start()


@pytest.fixture
def proxy(upstream):
    proxy = start_proxy(upstream.server_address[1])
    yield proxy
    proxy.stop()


@pytest.fixture
def proxy_to_nothing():
    proxy = start_proxy(free_port())
    yield proxy
    proxy.stop()


def request(proxy, method, path, body=None, headers=None):
    connection = http.client.HTTPConnection(*proxy.server_address[:2], timeout=10)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    return response, response.read()


def seen_by_upstream(response):
    seen = json.loads(response.getheader("X-Seen"))
    seen["headers"] = {name.lower(): value for name, value in seen["headers"]}
    return seen


def test_a_request_body_reaches_the_web_server_byte_for_byte_and_its_answer_comes_back_the_same(proxy):
    response, body = request(proxy, "POST", "/stripe/webhook/x/?a=%2F&b=1", body=EVERY_BYTE,
                             headers={"Stripe-Signature": "t=1,v1=abc", "Content-Type": "application/json"})

    assert response.status == 201
    assert body == EVERY_BYTE
    seen = seen_by_upstream(response)
    assert seen["method"] == "POST"
    assert seen["path"] == "/stripe/webhook/x/?a=%2F&b=1"
    assert seen["headers"]["stripe-signature"] == "t=1,v1=abc"
    assert seen["headers"]["content-length"] == str(len(EVERY_BYTE))


def test_the_web_server_sees_the_browsers_host_and_who_the_client_was(proxy):
    response, _ = request(proxy, "GET", "/", headers={"Host": "127.0.0.1:8000", "X-Forwarded-For": "203.0.113.9"})

    headers = seen_by_upstream(response)["headers"]
    assert headers["host"] == "127.0.0.1:8000"
    assert headers["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"


def test_every_cookie_the_web_server_sets_reaches_the_browser(proxy):
    response, _ = request(proxy, "GET", "/")

    assert response.headers.get_all("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"]


def test_a_browser_can_send_several_requests_on_one_connection(proxy):
    connection = http.client.HTTPConnection(*proxy.server_address[:2], timeout=10)
    for body in (b"first", b"", b"third"):
        connection.request("POST", "/", body=body)
        response = connection.getresponse()
        assert response.read() == body
    connection.request("HEAD", "/")
    assert connection.getresponse().read() == b""


def test_an_answer_without_a_length_is_streamed_to_the_end():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StreamHandler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    proxy = start_proxy(server.server_address[1])
    try:
        response, body = request(proxy, "GET", "/")
    finally:
        proxy.stop()
        server.shutdown()
        server.server_close()

    assert response.status == 200
    assert body == EVERY_BYTE * 3


def test_with_the_web_server_down_the_customer_gets_the_briefly_unavailable_page_with_status_502(
    proxy_to_nothing, settings
):
    response, body = request(proxy_to_nothing, "GET", "/orders/lookup/")

    assert response.status == 502
    page = body.decode()
    assert "briefly unavailable" in page
    assert "may or may not have been charged" in page
    assert 'href="/orders/lookup/"' in page
    assert settings.SUPPORT_EMAIL in page
    assert response.getheader("Cache-Control") == "no-store"
    assert response.getheader("Content-Type") == "text/html; charset=utf-8"


def test_a_payment_posted_while_the_web_server_is_down_gets_the_page_too(proxy_to_nothing):
    response, body = request(proxy_to_nothing, "POST", "/checkout/", body=b"email=ana%40example.com")

    assert response.status == 502
    assert b"may or may not have been charged" in body


def test_a_web_server_that_drops_the_connection_without_answering_gets_the_page():
    listener = socket.create_server(("127.0.0.1", 0))

    def accept_and_hang_up():
        connection, _ = listener.accept()
        connection.recv(65536)
        connection.close()  # a worker killed mid-request

    threading.Thread(target=accept_and_hang_up, daemon=True).start()
    proxy = start_proxy(listener.getsockname()[1])
    try:
        response, body = request(proxy, "GET", "/checkout/")
    finally:
        proxy.stop()
        listener.close()

    assert response.status == 502
    assert b"briefly unavailable" in body


def test_a_web_server_that_never_answers_gets_the_page_with_status_504():
    listener = socket.create_server(("127.0.0.1", 0))  # accepts (the kernel does) and never answers
    proxy = start_proxy(listener.getsockname()[1], timeout=0.3)
    try:
        response, body = request(proxy, "GET", "/checkout/")
    finally:
        proxy.stop()
        listener.close()

    assert response.status == 504
    assert b"briefly unavailable" in body
