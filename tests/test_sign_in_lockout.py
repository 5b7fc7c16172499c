"""Guessing passwords locks the sign-in (django-axes), on the dashboard's and the admin's page."""

from __future__ import annotations

import datetime as dt
import re
import shlex
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from calls.models import User

pytestmark = pytest.mark.django_db

README = Path(__file__).resolve().parent.parent / "README.md"
RIGHT = "pw-admin-123"  # tests/conftest.py's admin_user


def sign_in(client: Client, username: str, password: str, path: str = "/accounts/login/"):
    return client.post(path, {"username": username, "password": password})


def is_signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_twenty_wrong_passwords_lock_the_account_and_then_the_right_one_is_refused(admin_user):
    client = Client()
    answers = [sign_in(client, "amina", f"guess-{n}").status_code for n in range(20)]

    limit = settings.AXES_FAILURE_LIMIT
    assert answers[: limit - 1] == [200] * (limit - 1)  # the form again, "didn't match"
    assert answers[limit - 1 :] == [429] * (20 - limit + 1)
    refused = sign_in(client, "amina", RIGHT)
    assert refused.status_code == 429
    assert not is_signed_in(client)
    page = refused.content.decode()
    assert '<h1 id="locked-title">Sign-in locked</h1>' in page
    assert "for 15 minutes after the last attempt" in page
    assert "axes_reset_username amina" in page


def test_the_right_password_signs_in_again_once_the_lockout_has_ended(admin_user):
    client = Client()
    for n in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "amina", f"guess-{n}")
    assert sign_in(client, "amina", RIGHT).status_code == 429

    # The cool-off passes: the failures are now older than it.
    AccessAttempt.objects.update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - dt.timedelta(seconds=1)
    )
    assert sign_in(client, "amina", RIGHT).status_code == 302
    assert is_signed_in(client)


def test_failures_from_one_address_lock_it_for_every_username(admin_user):
    client = Client()
    for n in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, f"nobody-{n}", "guess")
    # amina herself never failed, but this address did, too often.
    assert sign_in(client, "amina", RIGHT).status_code == 429
    assert not is_signed_in(client)


def test_behind_the_proxy_the_address_is_the_one_the_proxy_saw(admin_user, settings):
    settings.BEHIND_TLS_PROXY = True
    attacker = Client(HTTP_X_FORWARDED_FOR="203.0.113.5", REMOTE_ADDR="172.18.0.9")
    for n in range(settings.AXES_FAILURE_LIMIT):
        sign_in(attacker, f"nobody-{n}", "guess")
    assert sign_in(attacker, "amina", RIGHT).status_code == 429

    # Someone else through the same proxy (same REMOTE_ADDR) still signs in; a forged first
    # entry does not make the attacker's address theirs, nor theirs the attacker's.
    colleague = Client(HTTP_X_FORWARDED_FOR="203.0.113.5, 198.51.100.7", REMOTE_ADDR="172.18.0.9")
    assert sign_in(colleague, "amina", RIGHT).status_code == 302


def test_the_admin_sign_in_is_locked_the_same_way(admin_user):
    admin_user.is_staff = True
    admin_user.save()
    client = Client()
    for n in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "amina", f"guess-{n}", path="/admin/login/")
    refused = sign_in(client, "amina", RIGHT, path="/admin/login/")
    assert refused.status_code == 429
    assert "Sign-in locked" in refused.content.decode()
    assert not is_signed_in(client)
    # The dashboard's sign-in shares the count: the account is locked there too.
    assert sign_in(client, "amina", RIGHT).status_code == 429


def test_the_readme_unlock_command_unlocks_the_account(admin_user):
    client = Client()
    for n in range(settings.AXES_FAILURE_LIMIT):
        sign_in(Client(REMOTE_ADDR=f"192.0.2.{n + 1}"), "amina", f"guess-{n}")
    assert sign_in(client, "amina", RIGHT).status_code == 429

    line = re.search(r"^python manage\.py axes_reset_username .*$", README.read_text(), re.M)
    assert line, "README.md shows the unlock command"
    command = shlex.split(line.group(0).split("#")[0])
    assert command[:3] == ["python", "manage.py", "axes_reset_username"]
    call_command(*command[2:])

    assert sign_in(client, "amina", RIGHT).status_code == 302


@pytest.mark.parametrize(
    "password, reason",
    [
        ("Summer2024", "too short"),
        ("amina.karachi1", "too similar to the username"),
        ("password1234", "too common"),
        ("830274916152", "entirely numeric"),
    ],
)
def test_weak_passwords_are_refused(password, reason):
    user = User(username="amina.karachi", role=User.Role.ADMIN)
    with pytest.raises(ValidationError, match=reason):
        validate_password(password, user)


def test_a_long_uncommon_passphrase_is_accepted():
    validate_password("copper-kettle-harbour", User(username="amina", role=User.Role.ADMIN))
