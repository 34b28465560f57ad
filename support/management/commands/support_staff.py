"""Add or update a support person for the console (the Django admin).

    manage.py support_staff ana@example.com --password 'long passphrase' [--refunds] [--name "Ana"]

Idempotent: re-running resets the password, and gives or takes away the refund right to match
`--refunds`. Everyone it creates is in the "Support" group (view every case, recover, resend,
note, extend access).
"""

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email

from support.services import support_staff_ensure, support_staff_totp_device


class Command(BaseCommand):
    help = __doc__.strip().splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--password", required=True)
        parser.add_argument("--name", default="")
        parser.add_argument("--refunds", action="store_true", help="May refund customers.")
        parser.add_argument("--totp", action="store_true",
                            help="Give them an authenticator-app device and print its setup link (once).")

    def handle(self, *args, email, password, name, refunds, totp, **options):
        try:
            validate_email(email)
        except ValidationError:
            raise CommandError(f"{email!r} is not an email address.") from None
        try:
            validate_password(password)
        except ValidationError as exc:
            raise CommandError("That password is too weak: " + " ".join(exc.messages)) from None
        user = support_staff_ensure(email=email, password=password, full_name=name, refunds=refunds)
        rights = "with refunds" if refunds else "without refunds"
        self.stdout.write(self.style.SUCCESS(f"Support person ready: {user.email} ({rights})"))
        if totp:
            device, created = support_staff_totp_device(user=user)
            if created:
                self.stdout.write("Add this to their authenticator app (shown once; keep it private):")
                self.stdout.write(device.config_url)
            else:
                self.stdout.write("They already have an authenticator device; nothing changed.")
