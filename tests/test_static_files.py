"""Static files reach every test Client as they reach a browser from a server: WhiteNoise serves
them, the hashed names cached for good (tests/static_files.py makes its table once per process)."""

from django.contrib.staticfiles.storage import staticfiles_storage
from django.test import Client


def test_every_client_gets_a_hashed_static_file_cached_for_good_and_a_missing_one_not_at_all():
    url = staticfiles_storage.url("billing/pay.js")

    for client in (Client(), Client()):  # the second from the table the first one made
        served = client.get(url)
        assert served.status_code == 200
        assert "immutable" in served["Cache-Control"]
        assert b"".join(served.streaming_content)
        assert client.get("/static/billing/no-such-file.css").status_code == 404
