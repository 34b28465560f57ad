from io import StringIO

import pytest
from django.core.management import call_command


@pytest.fixture
def console(client):
    """A support person (the Support group, no refunds), signed in to the console."""
    call_command("support_staff", "ana@backstop.localhost", password="a long pass phrase 42", stdout=StringIO())
    client.login(email="ana@backstop.localhost", password="a long pass phrase 42")
    return client
