"""The `make run` demo's fixed facts and its secrets under var/, shared by the devserver (which
starts the simulator with the demo account) and `seed_demo` (which creates the matching store)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

DEMO_ACCOUNT = ("demo", "2682.00", "5.50")  # username, balance, call rate on the simulator
# Seconds between an unanswered attempt and the provider's next free retry (the portal's Call
# Settings), short so that even an unreachable demo call ends within two minutes.
DEMO_RETRY_DELAYS = (10, 20, 40)
SIMULATOR_SPEED = 10  # a demo call rings and is answered in seconds, not a minute


def read_or_create_secret(path: Path, make: Callable[[], str]) -> tuple[str, bool]:
    """The secret stored at `path`, created once with `make()`. Returns (value, created)."""
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        value = ""
    if value:
        return value, False
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    # Readable by its owner only: it is a credential, even if only for the local demo.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(value + "\n")
    return value, True


def demo_api_key(var_dir: Path) -> str:
    """The demo store's key on the simulator: generated once, the same on every `make run`."""
    return read_or_create_secret(var_dir / "demo-api-key", lambda: secrets.token_hex(16))[0]


def demo_admin_password(var_dir: Path) -> tuple[str, bool]:
    """The demo users' password: generated once, reused. Returns (password, created)."""
    return read_or_create_secret(var_dir / "demo-admin-password", lambda: secrets.token_urlsafe(12))


def demo_shopify_secrets(var_dir: Path) -> tuple[str, str]:
    """The demo store's Shopify stand-in: (its Admin API token, its webhook secret)."""
    token = read_or_create_secret(
        var_dir / "demo-shopify-token", lambda: "shpat_" + secrets.token_hex(16)
    )
    secret = read_or_create_secret(var_dir / "demo-shopify-secret", lambda: secrets.token_hex(16))
    return token[0], secret[0]
