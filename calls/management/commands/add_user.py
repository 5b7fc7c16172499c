"""ROBODASH_PASSWORD=... python manage.py add_user NAME --role admin|manager|agent [--update]

The password is read from the environment, never from the command line (where `ps` and the
shell history would keep it).
"""

from __future__ import annotations

import os
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from calls.models import User

PASSWORD_ENV = "ROBODASH_PASSWORD"
ROLES = [role.value for role in User.Role]


class Command(BaseCommand):
    help = f"Add (or with --update change) a user; the password is read from ${PASSWORD_ENV}."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--role", help="|".join(ROLES))
        parser.add_argument(
            "--update",
            action="store_true",
            help=f"change an existing user (role, and the password if ${PASSWORD_ENV} is set)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["name"].strip()
        role = options["role"]
        password = os.environ.get(PASSWORD_ENV, "")
        if not name:
            raise CommandError("the user name must not be empty")
        if role is not None and role not in ROLES:
            raise CommandError(f"--role must be one of {', '.join(ROLES)}, not {role!r}")

        user = User.objects.filter(username=name).first()
        if user is None and options["update"]:
            raise CommandError(f"no user named {name!r} to update (leave out --update to add it)")
        if user is not None and not options["update"]:
            raise CommandError(f"a user named {name!r} exists already: add --update to change it")
        if user is None:
            if role is None:
                raise CommandError(f"--role is required: one of {', '.join(ROLES)}")
            if not password:
                raise CommandError(
                    f"set the password in the environment variable {PASSWORD_ENV} "
                    "(it is never taken from the command line)"
                )
            user = User(username=name)
        elif role is None and not password:
            raise CommandError(f"nothing to change: give --role, or set {PASSWORD_ENV}")

        if role is not None:
            user.role = role
        try:
            user.full_clean(exclude=["password"])
            if password:
                validate_password(password, user)
        except ValidationError as exc:
            raise CommandError(f"user {name!r} not saved: {' '.join(exc.messages)}") from None
        if password:
            user.set_password(password)
        user.save()
        action = "updated" if options["update"] else "added"
        self.stdout.write(self.style.SUCCESS(f"User {name!r} ({user.role}) {action}."))
