"""Postmark inbound mail whose attachments are of any shape (any JSON where a field goes, any text in a
name or type, content that is not base64) gets a clear answer: taken (with the files it could read)
or refused with a 400, never a 500."""

import base64
import json

import pytest
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from support.models import InboundMessage
from tests.fuzz.conftest import assert_clean_answer, browser
from tests.fuzz.strategies import hostile_text, json_values

pytestmark = pytest.mark.django_db

AUTH = "Basic " + base64.b64encode(b"esp:hook-secret").decode()
GOOD = {"Name": "a.png", "Content": base64.b64encode(b"\x89PNG").decode(), "ContentType": "image/png",
        "ContentLength": 4, "ContentID": ""}


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": "esp:hook-secret"}


attachment = st.one_of(
    json_values,
    st.fixed_dictionaries({}, optional={key: st.one_of(json_values, hostile_text) for key in GOOD}),
    st.builds(lambda key, value: {**GOOD, key: value}, st.sampled_from(sorted(GOOD)), st.one_of(json_values,
                                                                                                 hostile_text)))


@given(attachments=st.one_of(json_values, st.lists(attachment, max_size=3)))
def test_attachments_of_any_shape_get_a_clear_answer(attachments):
    InboundMessage.objects.all().delete()
    body = {"From": "ada@example.com", "FromFull": {"Email": "ada@example.com", "Name": "Ada"}, "Subject": "Hi",
            "TextBody": "Hello", "MessageID": "pm-any-shape", "Headers": [], "Attachments": attachments}

    response = assert_clean_answer(browser().post(reverse("anymail:postmark_inbound_webhook"),
                                                  data=json.dumps(body), content_type="application/json",
                                                  HTTP_AUTHORIZATION=AUTH))

    assert response.status_code in (200, 400)
    assert InboundMessage.objects.exists() == (response.status_code == 200)
