"""Keys for the access API (GET /api/v1/access/): made, listed and revoked here; the command and the
console call these. Only a hash is stored (djangorestframework-api-key): the key itself is shown
once, when it is made."""

from django.db import transaction
from rest_framework_api_key.models import APIKey


def api_key_create(*, name: str) -> tuple[APIKey, str]:
    """A new key for one product; returns the row and the key, which nobody can see again."""
    name = name.strip()
    if not name or len(name) > 50:
        raise ValueError("Name the key after the product that will use it (1 to 50 characters).")
    return APIKey.objects.create_key(name=name)


def api_keys_list():
    return APIKey.objects.order_by("-created")


@transaction.atomic
def api_key_revoke(*, prefix: str) -> APIKey:
    """Stop a key working, for good (its prefix is the part before the dot, shown by `list`)."""
    key = APIKey.objects.select_for_update().filter(prefix=prefix.strip().partition(".")[0]).first()
    if key is None:
        raise ValueError(f"No API key with the prefix {prefix!r}.")
    if not key.revoked:
        key.revoked = True
        key.save(update_fields=["revoked"])
    return key
