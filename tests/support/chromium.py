"""Debian's Chromium, as the browser tests and `make screenshots` launch it (never a browser
Playwright downloads: this machine has no network but the package registries)."""

import os

from playwright.sync_api import ViewportSize

# Debian's headless shell (package chromium-headless-shell) where it is installed, else the whole
# browser run headless. The shell is the same Chromium (Blink and V8 of the same version) without
# the browser's own UI layers, and what Playwright itself launches for headless Chromium: over
# the browser tests it cost 89 s of CPU here against 133 s for the whole browser, for the same
# results.
HEADLESS_SHELL = "/usr/bin/chromium-headless-shell"
CHROMIUM = os.environ.get("ROBODASH_CHROMIUM") or (
    HEADLESS_SHELL if os.access(HEADLESS_SHELL, os.X_OK) else "/usr/bin/chromium"
)
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
