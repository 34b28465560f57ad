from django.conf import settings


def brand() -> dict:
    """The product's name and sign-off, for every template: pages get them through `site` below,
    emails and the error pages (rendered without a request) call this directly."""
    return {
        "SITE_NAME": settings.SITE_NAME,
        "SUPPORT_SIGNATURE": settings.SUPPORT_SIGNATURE,
    }


def site(request):
    return {
        **brand(),
        "SUPPORT_EMAIL": settings.SUPPORT_EMAIL,
        "STRIPE_JS_URL": settings.STRIPE_JS_URL,
    }
