"""GET /api/v1/access/?email=ADDRESS: a separate product asks whether an address has paid access.

Only with an API key (`Authorization: Api-Key <key>`; made by `manage.py access_api_key create NAME`,
stored hashed by djangorestframework-api-key), throttled per key (ACCESS_API_THROTTLE_RATE).
The answer is accounts.access's summary: the same words the webhooks carry (docs/integrating.md).
Versioned in the path: a change that breaks a caller becomes /api/v2/, beside this one.
"""

from django.contrib.auth import get_user_model
from rest_framework import serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView
from rest_framework_api_key.permissions import HasAPIKey, KeyParser

from accounts.access import access_summary
from accounts.models import normalize_email


class APIKeyChallenge(BaseAuthentication):
    """Authenticates no one (the key is checked by HasAPIKey); it only makes a missing or wrong key
    a 401 that names the scheme, rather than a bare 403."""

    def authenticate(self, request):
        return None

    def authenticate_header(self, request):
        return 'Api-Key realm="access"'


class PerKeyThrottle(SimpleRateThrottle):
    """Counts each API key on its own (by its public prefix): one busy product cannot use up another's."""

    scope = "access_api"

    def get_cache_key(self, request, view):
        key = KeyParser().get(request) or ""
        return self.cache_format % {"scope": self.scope, "ident": key.partition(".")[0] or self.get_ident(request)}


class AccessQuery(serializers.Serializer):
    email = serializers.EmailField(max_length=254)


class AccessAPI(APIView):
    authentication_classes = [APIKeyChallenge]
    permission_classes = [HasAPIKey]
    throttle_classes = [PerKeyThrottle]

    def get(self, request):
        query = AccessQuery(data={"email": request.query_params.get("email", "")})
        if not query.is_valid():
            return Response({"detail": "Give the address to ask about as ?email=ADDRESS (a valid email address).",
                             "errors": query.errors}, status=400, headers={"Cache-Control": "no-store"})
        email = normalize_email(query.validated_data["email"])
        user = get_user_model().objects.filter(email=email).first()
        body = (access_summary(user) if user is not None else
                {"email": email, "has_access": False, "plan": None, "access_until": None, "periods": []})
        return Response(body, headers={"Cache-Control": "no-store"})
