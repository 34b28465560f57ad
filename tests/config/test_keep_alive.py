"""nginx, not gunicorn, closes an idle connection between them (docs/deploy): a request nginx
sends on a connection at the moment gunicorn closes it gets no answer, and nginx answers a POST
(a checkout, a webhook) with 502. Seen under `make load` as locust's "HTTP 0" (docs/performance.md)."""

import re
from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy"


def _seconds(value: str) -> int:
    return int(value.removesuffix("s"))


def test_gunicorn_keeps_an_idle_connection_open_longer_than_nginx_keeps_it_for_reuse():
    exec_start = re.search(r"^ExecStart=(.*)$", (DEPLOY / "backstop-web.service").read_text(), re.MULTILINE)[1]
    upstream = re.search(r"upstream backstop_app \{(.*?)\}", (DEPLOY / "nginx.conf").read_text(), re.S)[1]

    gunicorn_keep_alive = re.search(r"--keep-alive (\d+)", exec_start)
    nginx_keepalive_timeout = re.search(r"^\s*keepalive_timeout (\d+s?);", upstream, re.MULTILINE)

    assert gunicorn_keep_alive, "gunicorn's default keep-alive (2 s) is shorter than nginx's"
    assert nginx_keepalive_timeout, "nginx's default upstream keepalive_timeout (60 s) must be stated"
    assert int(gunicorn_keep_alive[1]) > _seconds(nginx_keepalive_timeout[1])
