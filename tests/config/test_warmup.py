"""What a server builds once at its start instead of in a customer's request (config/warmup.py)."""

import gc

from django.core.validators import EmailValidator
from django.template import engines
from django.urls import clear_url_caches, get_resolver
from django.utils.functional import empty

from config.warmup import startup_objects_freeze, warm_up


def test_warming_up_builds_the_url_resolver_and_compiles_the_templates():
    clear_url_caches()
    engine = engines["django"].engine
    for loader in engine.template_loaders:
        if hasattr(loader, "reset"):
            loader.reset()

    assert not get_resolver()._populated

    warm_up()

    assert get_resolver()._populated
    cached = [loader for loader in engine.template_loaders if hasattr(loader, "get_template_cache")]
    assert any("emails/confirmation.html" in loader.get_template_cache for loader in cached)


def test_warming_up_compiles_the_email_validators_patterns():
    EmailValidator.domain_regex._wrapped = empty  # as a freshly started process has it

    warm_up()

    assert EmailValidator.domain_regex._wrapped is not empty


def test_a_started_process_keeps_what_it_built_out_of_the_garbage_collectors_way():
    gc.unfreeze()
    try:
        startup_objects_freeze()
        frozen = gc.get_freeze_count()
        assert frozen > 50_000  # Django, dj-stripe's models, the templates: far more than a request makes
    finally:
        gc.unfreeze()  # this test process goes on collecting as before
