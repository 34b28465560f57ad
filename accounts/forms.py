from django.contrib.auth.forms import BaseUserCreationForm, PasswordResetForm
from django.contrib.auth.forms import UserChangeForm as DjangoUserChangeForm

from accounts.models import User, normalize_email


class UserCreationForm(BaseUserCreationForm):
    class Meta:
        model = User
        fields = ["email", "full_name"]


class UserChangeForm(DjangoUserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class CustomerPasswordResetForm(PasswordResetForm):
    """Also reaches customers who have never set a password.

    Checkout creates accounts without one (they sign in with an emailed link); Django's form
    skips users with unusable passwords, which would leave exactly those customers unable to
    set their first password.
    """

    def get_users(self, email):
        return User.objects.filter(email=normalize_email(email), is_active=True)
