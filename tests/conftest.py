import pytest


@pytest.fixture(autouse=True)
def anymail_test_backend(settings):
    # pytest-django swaps in locmem for every test; Backstop sends through anymail, whose test
    # backend records what the ESP would have been asked (tags, metadata, message id).
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
