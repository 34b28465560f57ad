"""Real Chromium for browser tests: Debian's build, launched by Playwright (never `playwright install`)."""

import contextlib
from urllib.parse import urlsplit

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    # The machine has no network: without these Chromium keeps trying Google's services.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Events Playwright listens to on a page itself (page.py): every other listener is a test's own.
_PLAYWRIGHTS_OWN_EVENTS = {"close", "crash"}


class _Tab:
    """One tab, reused by one test after another, emptied in between as a new browser would be.

    A page in a fresh context costs Chromium a new renderer process and its setup: about 0.4 CPU-s
    (measured: docs/decisions/0026), several times what the tests' own steps in it cost, and the
    suite opens a few hundred. A tab kept between tests keeps its renderer; between two uses it
    loses what a new context would not have: its cookies and permissions, the session storage of
    every origin it visited, its routes and the test's listeners, any other page the test opened,
    and its document (about:blank, so no script of the last test runs on)."""

    def __init__(self, browser, javascript):
        self.context = browser.new_context(java_script_enabled=javascript)
        self.page = self.context.new_page()
        self.origins = set()
        self.page.on("framenavigated", self._remember_origin)

    def _remember_origin(self, frame):
        parts = urlsplit(frame.url)
        if parts.scheme in ("http", "https"):
            self.origins.add(f"{parts.scheme}://{parts.netloc}")

    def usable(self):
        return not self.page.is_closed() and self.page.context.pages == [self.page]

    def empty(self):
        """What a new context would not have, gone; False if the tab cannot be reused."""
        for other in self.context.pages:
            if other is not self.page:
                other.close()
        if self.page.is_closed():
            return False
        impl = self.page._impl_obj  # no public way to drop listeners whose functions we do not hold
        for event in impl.event_names():
            if event not in _PLAYWRIGHTS_OWN_EVENTS:
                impl.remove_all_listeners(event)
        self.page.on("framenavigated", self._remember_origin)
        self.page.unroute_all(behavior="ignoreErrors")
        self.context.unroute_all(behavior="ignoreErrors")
        self.page.goto("about:blank")
        session = self.context.new_cdp_session(self.page)
        try:
            for origin in self.origins:
                session.send("Storage.clearDataForOrigin", {"origin": origin, "storageTypes": "all"})
        finally:
            session.detach()
        self.origins.clear()
        self.context.clear_cookies()
        self.context.clear_permissions()
        return True

    def close(self):
        with contextlib.suppress(Exception):
            self.context.close()


_tabs = {}  # (browser, javascript) -> the tab no test is using


@contextlib.contextmanager
def strict_page(browser, *, width=1000, height=1000, timeout_ms=20_000, javascript=True):
    """A page with nothing of an earlier test in it (see _Tab), failing the test on any uncaught
    script error."""
    key = (id(browser), javascript)
    tab = _tabs.pop(key, None)
    if tab is None or not tab.usable():
        if tab is not None:
            tab.close()
        tab = _Tab(browser, javascript)
    page = tab.page
    page.set_viewport_size({"width": width, "height": height})
    tab.context.set_default_timeout(timeout_ms)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        try:
            reusable = tab.empty()
        except Exception:  # the browser went away under the test, say: the next test gets a new tab
            reusable = False
        if reusable and key not in _tabs:
            _tabs[key] = tab
        else:
            tab.close()
    assert errors == [], f"uncaught errors in the page: {errors}"
