"""strict_page keeps one tab between tests (tests/browser.py): the next test must find nothing of
the last one in it, as in a new browser."""

import http.server
import socketserver
import threading

import pytest

from tests.browser import strict_page


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"<!doctype html><title>a page</title><p>served</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def site():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_the_next_page_has_none_of_the_last_ones_cookies_storage_routes_listeners_or_pages(chromium, site):
    heard = []
    with strict_page(chromium) as first:
        first.goto(site)
        first.context.add_cookies([{"name": "signed_in", "value": "ana", "url": site}])
        first.evaluate("sessionStorage.setItem('tries', '3'); localStorage.setItem('seen', 'yes')")
        first.route("**/*", lambda route: route.abort())
        first.on("console", lambda message: heard.append(message.text))
        first.context.new_page()

    with strict_page(chromium) as second:
        assert second.url == "about:blank"
        assert second.context.pages == [second]
        second.goto(site)  # answered by the server: no route of the last test is left
        assert second.context.cookies() == []
        assert second.evaluate("[sessionStorage.getItem('tries'), localStorage.getItem('seen')]") == [None, None]
        second.evaluate("console.log('only this test listens')")
    assert heard == []


def test_a_page_with_javascript_off_is_its_own(chromium, site):
    with strict_page(chromium, javascript=False) as page:
        page.goto(site)
        assert page.locator("p").text_content() == "served"
    with strict_page(chromium) as page:
        page.goto(site)
        assert page.evaluate("1 + 1") == 2


def test_an_uncaught_script_error_still_fails_the_test(chromium, site):
    def a_test_whose_page_throws():
        with strict_page(chromium) as page:
            page.goto(site)
            with page.expect_event("pageerror"):
                page.evaluate("setTimeout(() => { throw new Error('boom'); })")

    with pytest.raises(AssertionError, match="uncaught errors in the page"):
        a_test_whose_page_throws()
