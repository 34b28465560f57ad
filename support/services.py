"""Support-team writes: staff accounts and (later) the recovery actions of the console."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction

SUPPORT_GROUP = "Support"
# What a support person may do in the console. Refund rights are granted per action later.
SUPPORT_PERMISSIONS = [
    ("accounts", "view_user"),
    ("billing", "view_plan"),
]


@transaction.atomic
def support_group_ensure() -> Group:
    group, _ = Group.objects.get_or_create(name=SUPPORT_GROUP)
    for app_label, codename in SUPPORT_PERMISSIONS:
        permission = Permission.objects.filter(
            content_type__app_label=app_label, codename=codename
        ).first()
        if permission:
            group.permissions.add(permission)
    return group


@transaction.atomic
def support_staff_ensure(*, email: str, password: str, full_name: str = ""):
    """Create or refresh a support person who can sign in to the console with this password."""
    User = get_user_model()
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User.objects.create_user(email=email, password=password, full_name=full_name)
    else:
        user.set_password(password)
    user.is_staff = True
    user.is_active = True
    user.save()
    user.groups.add(support_group_ensure())
    return user
