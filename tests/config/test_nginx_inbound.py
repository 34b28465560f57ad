"""The docs' nginx example (docs/deploy/nginx.conf) takes support mail with its attachments: its
inbound location allows what the app takes there, while every other URL keeps the 1 MB limit.

The example runs as written except what only a real host has (TLS certificates, port 443, the
log and page paths), in front of the app (pytest-django's live server, test settings)."""

import base64
import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from config.esp_webhooks import inbound_request_limit
from support.models import InboundMessage
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "deploy" / "nginx.conf"
MB = 1024 * 1024
AUTH = "Basic " + base64.b64encode(b"esp:hook-secret").decode()

needs_nginx = pytest.mark.skipif(shutil.which("nginx") is None,
                                 reason="nginx is not installed (apt-get install nginx-light)")


def test_the_inbound_location_allows_what_the_app_takes_there():
    sizes = re.findall(r"location ~ \^/anymail/\[a-z_\]\+/inbound\(_mime\)\?/\$ \{\s*client_max_body_size (\d+)m;",
                       EXAMPLE.read_text())

    assert [int(size) * MB for size in sizes] == [inbound_request_limit()]
    assert settings.INBOUND_ATTACHMENTS_MAX_MB == 25


def site_for_test(*, app_port: int, port: int, tmp: Path) -> str:
    text = EXAMPLE.read_text()
    text = re.sub(r"\n\s*listen \[::\]:\d+( ssl)?;", "", text)
    text = re.sub(r"\n\s*ssl_certificate(_key)?\s+[^;]+;", "", text)
    text = text.replace("listen 443 ssl;", f"listen 127.0.0.1:{port};")
    text = text.replace("listen 80;", f"listen 127.0.0.1:{free_port()};")
    text = text.replace("server 127.0.0.1:8000", f"server 127.0.0.1:{app_port}")
    text = text.replace("/var/log/nginx/", f"{tmp}/").replace("/var/www/backstop", str(tmp))
    return text


@pytest.fixture
def nginx(live_server, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    port = free_port()
    app_port = int(live_server.url.rsplit(":", 1)[1])
    (tmp_path / "site.conf").write_text(site_for_test(app_port=app_port, port=port, tmp=tmp_path))
    (tmp_path / "nginx.conf").write_text(f"""
        daemon off; user root; worker_processes 1; pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;
        events {{}}
        http {{
            client_body_temp_path {tmp_path}/body; proxy_temp_path {tmp_path}/proxy;
            fastcgi_temp_path {tmp_path}/fastcgi; uwsgi_temp_path {tmp_path}/uwsgi; scgi_temp_path {tmp_path}/scgi;
            include {tmp_path}/site.conf;
        }}""")
    process = subprocess.Popen(["nginx", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)])
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
            break
        except OSError:
            assert process.poll() is None, (tmp_path / "error.log").read_text()
            assert time.monotonic() < deadline
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


def post(url, body: bytes, content_type="application/json") -> int:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": content_type, "Authorization": AUTH})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def postmark_with_attachment(size: int) -> bytes:
    content = (b"\x89PNG\r\n\x1a\n" * (size // 8 + 1))[:size]
    return json.dumps({
        "From": "ada@example.com", "FromFull": {"Email": "ada@example.com", "Name": "Ada"},
        "To": "support@backstop.localhost", "Subject": "My bank statement", "MessageID": "pm-nginx-1",
        "TextBody": "Screenshot attached.", "Headers": [],
        "Attachments": [{"Name": "statement.png", "Content": base64.b64encode(content).decode(),
                         "ContentType": "image/png", "ContentLength": size, "ContentID": ""}],
    }).encode()


@needs_nginx
@pytest.mark.django_db(transaction=True)
def test_a_support_email_with_a_six_megabyte_screenshot_passes_the_docs_nginx(nginx):
    status = post(f"{nginx}/anymail/postmark/inbound/", postmark_with_attachment(6 * MB))

    assert status == 200
    assert InboundMessage.objects.get().attachments.get().size == 6 * MB


@needs_nginx
@pytest.mark.django_db(transaction=True)
def test_every_other_url_keeps_the_one_megabyte_limit(nginx):
    assert post(f"{nginx}/account/login/", b"x" * (2 * MB), "application/x-www-form-urlencoded") == 413
