"""`make screenshots`: a PNG of each page, with demo data, into docs/screenshots/.

    DATABASE_URL=... python -m bench.screenshots [--calls 60000]

Builds the demo dataset (bench/demo_data.py) in a fresh database of its own (`<db>_screens`),
starts the provider simulator with the demo stores' accounts (so the overview's balances are
real answers) and the web server (`manage.py runserver`), signs in as the merchant admin in
Debian's Chromium and captures each page at 1366x900, then a few at a phone's 390x844 (the
agent's follow-up queue, the overview with its menu open) and in Urdu (`ur-*.png`, laptop and
phone). Everything it started is stopped again.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from robodash import embedded
from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS, VIEWPORT

if TYPE_CHECKING:
    from bench.demo_data import DemoData

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
PASSWORD = "screens-password-123"
HOST = "127.0.0.1"


def screens_database_url(url: str) -> str:
    """A fresh `<name>_screens` database next to the one `url` names."""
    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}_screens"')
        conn.execute(f'CREATE DATABASE "{name}_screens"')
    return f"{base}/{name}_screens"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the web server exited with code {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return
        time.sleep(0.2)
    raise SystemExit(f"the web server did not listen on port {port} within {timeout:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.screenshots", description=__doc__)
    parser.add_argument("--calls", type=int, default=60_000)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if not os.access(CHROMIUM, os.X_OK):
        raise SystemExit(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")

    # The tests' servers: the given ones, the machine's, or robodash's own for the run.
    with embedded.servers_for_tests() as servers:
        os.environ["DATABASE_URL"] = screens_database_url(servers.database_url)
        os.environ["CELERY_BROKER_URL"] = servers.broker_url
        return take_screenshots(args)


def take_screenshots(args: argparse.Namespace) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "robodash.settings")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True)

    import django

    django.setup()
    from bench import demo_data
    from simulator.control import SimulatorProcess

    accounts = {
        spec.name: {
            "api_key": f"screens-{spec.order_prefix.lower()}-0123456789abcdef",
            "username": spec.name.split()[0].lower(),
            "balance": str(spec.balance),
            "call_rate": str(spec.call_rate),
        }
        for spec in demo_data.DEMO_STORES
    }
    print("generating the demo data…", flush=True)
    data = demo_data.generate(
        calls=args.calls,
        campaigns=24,
        days=60,
        events=2000,
        password=PASSWORD,
        api_keys={name: account["api_key"] for name, account in accounts.items()},
    )
    with SimulatorProcess.start(accounts=accounts.values()) as simulator:
        # What beat's balance refresh would have stored by now.
        from django.conf import settings

        from calls.models import Store
        from calls.pipeline.balances import refresh_store_balance

        settings.ROBOCALL_BASE_URL = simulator.base_url
        for store_id in Store.objects.values_list("pk", flat=True):
            refresh_store_balance(store_id)
        port = free_port()
        env = {
            **os.environ,
            "ROBOCALL_BASE_URL": simulator.base_url,
            "ALLOWED_HOSTS": HOST,
            "PYTHONUNBUFFERED": "1",
        }
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"{HOST}:{port}", "--noreload"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_for_port(port, server)
            capture(f"http://{HOST}:{port}", data, args.out)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=10)
    return 0


def pages(data: DemoData) -> list[tuple[str, str]]:
    """(file name, path) of each page, with the most telling object of the demo data."""
    from calls.models import Call

    newest = data.campaigns[-1]  # still running: its progress is the interesting one
    call = (
        Call.objects.filter(outcome=Call.Outcome.CALLBACK_REQUESTED, events__isnull=False)
        .order_by("-created_at")
        .first()
    )
    assert call is not None, "the demo data has no call-back request with a timeline"
    return [
        ("overview", "/"),
        ("calls", "/calls/"),
        ("call", f"/calls/{call.pk}/"),
        ("campaigns", "/campaigns/"),
        ("campaign", f"/campaigns/{newest.pk}/"),
        ("campaign_new", "/campaigns/new/"),
        ("followups", "/followups/"),
        ("reports", "/reports/"),
        ("settings", "/settings/"),
    ]


PHONE = {"width": 390, "height": 844}


def phone_and_urdu_pages(data: DemoData) -> list[tuple[str, str, str, bool]]:
    """(file name, path, language, phone) of the pictures beside the laptop ones."""
    return [
        ("phone-followups", "/followups/", "en", True),
        ("phone-menu", "/", "en", True),
        ("ur-overview", "/", "ur", False),
        ("ur-reports", "/reports/", "ur", False),
        ("ur-phone-followups", "/followups/", "ur", True),
    ]


def capture(base_url: str, data: DemoData, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    shots = pages(data)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(base_url=base_url, viewport=VIEWPORT)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto("/accounts/login/")
        page.get_by_label("Username").fill("amina")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base_url}/")
        for name, path in shots:
            response = page.goto(path)
            if response is None or response.status != 200:
                raise SystemExit(f"{path} answered {response and response.status}, not 200")
            # Let htmx fetch what a page loads on arrival (the balances) and settle.
            page.wait_for_load_state("networkidle")
            target = out / f"{name}.png"
            page.screenshot(path=str(target))
            print(f"  {target.relative_to(ROOT)}  ({path})", flush=True)
        cookies = context.cookies()  # the signed-in session, for the phone and Urdu pictures
        for name, path, language, phone in phone_and_urdu_pages(data):
            other = browser.new_context(
                base_url=base_url,
                viewport=PHONE if phone else VIEWPORT,
                is_mobile=phone,
                has_touch=phone,
                device_scale_factor=2 if phone else 1,
            )
            other.add_cookies(
                [*cookies, {"name": "django_language", "value": language, "url": base_url}]
            )
            shot = other.new_page()
            shot.on("pageerror", lambda e: errors.append(str(e)))
            response = shot.goto(path)
            if response is None or response.status != 200:
                raise SystemExit(f"{path} answered {response and response.status}, not 200")
            shot.wait_for_load_state("networkidle")
            if name == "phone-menu":
                shot.get_by_role("button", name="Menu").click()
            target = out / f"{name}.png"
            shot.screenshot(path=str(target))
            print(f"  {target.relative_to(ROOT)}  ({path}, {language}{', phone' if phone else ''})")
            other.close()
        browser.close()
    if errors:
        print("the browser reported errors:\n  " + "\n  ".join(errors))
        raise SystemExit(1)


if __name__ == "__main__":
    sys.exit(main())
