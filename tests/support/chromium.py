"""Debian's Chromium, as the browser tests and `make screenshots` launch it (never a browser
Playwright downloads: this machine has no network but the package registries)."""

import os

from playwright.sync_api import ViewportSize

CHROMIUM = os.environ.get("ROBODASH_CHROMIUM", "/usr/bin/chromium")
# The machine has no network: without these, Chromium's background services (updates, sync,
# QUIC probes) fill the log with connection errors. Playwright's launch() already gives every
# browser a fresh, temporary user-data-dir of its own.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT: ViewportSize = {"width": 1366, "height": 900}
