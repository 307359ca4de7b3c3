"""Create a tutor who can sign in: the user, the "Tutors" group, the tutor profile.

Like createsuperuser: asks for what is missing, or with --noinput takes it from the
options and the environment (DJANGO_TUTOR_PASSWORD for the password; without one the
account has no usable password until `changepassword` or a password reset sets one).

No session type is made for the tutor: a remote one needs their real video link and an
in-person one their meeting place, and a made-up one would be advertised at once. The
command says where to add them.
"""

import getpass
import os
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email, validate_slug
from django.db import models, transaction

from bookings import services, validation
from bookings.models import Tutor, currency_validator, is_timezone

FIELDS = {
    # option: (prompt, environment variable for --noinput)
    "email": ("Email (booking notifications go here)", "DJANGO_TUTOR_EMAIL"),
    "name": ("Name as students see it", "DJANGO_TUTOR_NAME"),
    "slug": ("Short name for the public page, /t/<slug>/", "DJANGO_TUTOR_SLUG"),
    "timezone": (
        "Time zone of the weekly rules (IANA, e.g. America/New_York)",
        "DJANGO_TUTOR_TIMEZONE",
    ),
}
PASSWORD_ENV = "DJANGO_TUTOR_PASSWORD"  # noqa: S105 (the name of a variable)


class Command(BaseCommand):
    help = "Create a tutor account: user, Tutors group (admin permissions), tutor profile."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email")
        parser.add_argument("--name", help="The name students see.")
        parser.add_argument("--slug", help="The public page's address: /t/<slug>/.")
        parser.add_argument("--timezone", help="IANA zone of the weekly rules.")
        parser.add_argument("--username", help="Sign-in name (default: the slug).")
        parser.add_argument("--currency", default="usd", help="ISO 4217 code (default usd).")
        parser.add_argument(
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help=f"Ask nothing: options, then DJANGO_TUTOR_* variables; {PASSWORD_ENV}.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        interactive = options["interactive"]
        values: dict[str, str] = {}
        for name, (prompt, env) in FIELDS.items():
            given = options.get(name) or ("" if interactive else os.environ.get(env, ""))
            values[name] = self._value(name, given, prompt=prompt, interactive=interactive)
        username = options.get("username") or values["slug"]
        self._check_username(username)
        currency = (options.get("currency") or "usd").strip().lower()
        try:
            currency_validator(currency)
        except ValidationError as exc:
            raise CommandError(f"currency: {exc.messages[0]}") from None
        password = self._password(username, values, interactive=interactive)

        with transaction.atomic():
            user = get_user_model().objects.create_user(
                username=username, email=values["email"], password=password, is_staff=True
            )
            if password is None:
                user.set_unusable_password()
                user.save(update_fields=["password"])
            # The admin, limited to the tutor's own rows (bookings/admin.py).
            user.groups.add(services.tutor_group())
            tutor = Tutor.objects.create(
                user=user,
                slug=values["slug"],
                display_name=values["name"],
                email=values["email"],
                timezone=values["timezone"],
                currency=currency,
            )
        base = settings.PUBLIC_BASE_URL
        lines = [
            self.style.SUCCESS(
                f"Tutor {tutor.display_name} created; they sign in as {username!r}."
            ),
            f"  Sign in        {base}/accounts/login/",
            f"  Next           add a session type and price at {base}/tutor/offerings/,",
            f"                 then weekly times at {base}/tutor/availability/",
            f"  Public page    {base}/t/{tutor.slug}/",
        ]
        if password is None:
            lines.append(
                f"  No password was set: `python manage.py changepassword {username}` sets one."
            )
        self.stdout.write("\n".join(lines))

    # --- asking and checking ---------------------------------------------------------------

    def _value(self, name: str, given: str, *, prompt: str, interactive: bool) -> str:
        while True:
            value = given if given or not interactive else input(f"{prompt}: ")
            try:
                return self._clean(name, value)
            except CommandError as exc:
                if not interactive or given:
                    raise
                self.stderr.write(f"Error: {exc}")

    def _clean(self, name: str, raw: str) -> str:
        value = validation.normalise_text(raw or "")
        if not value:
            raise CommandError(f"{name}: required.")
        try:
            validation.check_text(value)
            if name == "email":
                if len(value) > validation.EMAIL_MAX_LENGTH:
                    raise ValidationError("That address is too long.")
                validate_email(value)
                value = value.lower()
            elif name == "name":
                if len(value) > validation.NAME_MAX_LENGTH:
                    raise ValidationError(
                        f"At most {validation.NAME_MAX_LENGTH} characters, please."
                    )
                validation.check_name(value)
            elif name == "slug":
                value = value.lower()
                validate_slug(value)
                if len(value) > 50:
                    raise ValidationError("At most 50 characters, please.")
                if Tutor.objects.filter(slug=value).exists():
                    raise ValidationError(f"/t/{value}/ belongs to another tutor already.")
            elif name == "timezone" and not is_timezone(value):
                raise ValidationError(f"{value!r} is not an IANA time zone.")
        except ValidationError as exc:
            raise CommandError(f"{name}: {exc.messages[0]}") from None
        return value

    def _check_username(self, username: str) -> None:
        user_model = get_user_model()
        field = user_model._meta.get_field(user_model.USERNAME_FIELD)
        try:
            if isinstance(field, models.Field):
                field.clean(username, None)
        except ValidationError as exc:
            raise CommandError(f"username: {exc.messages[0]}") from None
        if user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).exists():
            raise CommandError(f"username: {username!r} is taken (pass --username to choose).")

    def _password(self, username: str, values: dict[str, str], *, interactive: bool) -> str | None:
        user = get_user_model()(username=username, email=values["email"])
        if not interactive:
            password = os.environ.get(PASSWORD_ENV)
            if password:
                try:
                    validate_password(password, user)
                except ValidationError as exc:
                    raise CommandError("password: " + " ".join(exc.messages)) from None
            return password or None
        while True:
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Password (again): "):
                self.stderr.write("Error: the two passwords differ.")
                continue
            try:
                validate_password(password, user)
            except ValidationError as exc:
                self.stderr.write("Error: " + " ".join(exc.messages))
                continue
            return password
