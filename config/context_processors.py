from django.conf import settings


def site(request):
    return {
        "SUPPORT_EMAIL": settings.SUPPORT_EMAIL,
        "STRIPE_JS_URL": settings.STRIPE_JS_URL,
    }
