"""A real gunicorn serving robodash on the test database, a signed-in requests session for it,
and the memory of the worker process that answers: for measuring what one request costs."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.support.pipeline import ROOT, wait_for

# Signs in with Django's default hasher, not the tests' fast one: give the user a password
# hashed with it (settings.PASSWORD_HASHERS = [PBKDF2PasswordHasher] before creating them).
DEFAULT_HASHER = "django.contrib.auth.hashers.PBKDF2PasswordHasher"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def status_kib(pid: int, field: str) -> int:
    """A memory figure of /proc/<pid>/status (VmRSS, VmHWM), in KiB."""
    text = Path(f"/proc/{pid}/status").read_text()
    found = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    assert found, f"no {field} in /proc/{pid}/status"
    return int(found.group(1))


@dataclass
class WebServer:
    url: str
    master: subprocess.Popen[bytes]
    log: Path

    def worker_pid(self) -> int:
        """The one gunicorn worker (the master forks it): the process that answers requests."""
        children = Path(f"/proc/{self.master.pid}/task/{self.master.pid}/children").read_text()
        pids = [int(pid) for pid in children.split()]
        assert len(pids) == 1, f"expected one gunicorn worker, found {pids}"
        return pids[0]

    def signed_in(self, username: str, password: str) -> requests.Session:
        browser = requests.Session()
        browser.trust_env = False
        form = browser.get(f"{self.url}/accounts/login/", timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert token, form.text[:500]
        answer = browser.post(
            f"{self.url}/accounts/login/",
            data={"username": username, "password": password, "csrfmiddlewaretoken": token[1]},
            headers={"Referer": f"{self.url}/accounts/login/"},
            allow_redirects=False,
            timeout=30,
        )
        assert answer.status_code == 302, answer.text[:500]
        return browser

    def upload(
        self, browser: requests.Session, store_pk: int, campaign_name: str, content: bytes
    ) -> tuple[requests.Response, float, float]:
        """Post `content` as the new-campaign page's CSV upload: the answer, the seconds it took
        and how many MiB the worker's peak resident memory rose above its memory before."""
        token = self.csrf_token(browser, "/campaigns/new/")
        worker = self.worker_pid()
        before = status_kib(worker, "VmRSS")
        started = time.monotonic()
        answer = browser.post(
            f"{self.url}/campaigns/new/upload/",
            data={"store": store_pk, "campaign_name": campaign_name, "csrfmiddlewaretoken": token},
            files={"file": ("orders.csv", content, "text/csv")},
            headers={"Referer": f"{self.url}/campaigns/new/"},
            allow_redirects=False,
            timeout=300,
        )
        seconds = time.monotonic() - started
        return answer, seconds, (status_kib(worker, "VmHWM") - before) / 1024

    def csrf_token(self, browser: requests.Session, path: str) -> str:
        page = browser.get(f"{self.url}{path}", timeout=30)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token, page.text[:500]
        return token[1]


@contextmanager
def gunicorn(env: dict[str, str]) -> Iterator[WebServer]:
    """gunicorn with one worker, as production runs it (DEBUG off, gunicorn.conf.py's timeout),
    on plain HTTP."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = Path(tempfile.mkdtemp(prefix="robodash-web-")) / "gunicorn.log"
    app_env = {
        "PATH": os.environ["PATH"],
        "SECRET_KEY": "web-test-secret-key-not-for-production",
        "DEBUG": "false",
        "ROBODASH_BEHIND_TLS_PROXY": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "CSRF_TRUSTED_ORIGINS": url,
        **env,
    }
    with log.open("wb") as out:
        master = subprocess.Popen(
            [
                *(sys.executable, "-m", "gunicorn", "robodash.wsgi"),
                *("--bind", f"127.0.0.1:{port}", "--workers", "1", "--timeout", "30"),
            ],
            cwd=ROOT,
            env=app_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = WebServer(url=url, master=master, log=log)

    def answers() -> bool:
        try:
            requests.get(f"{url}/accounts/login/", timeout=2)
        except requests.RequestException:
            return False
        return True

    try:
        wait_for(answers, timeout=60, what="gunicorn", describe=lambda: log.read_text()[-2000:])
        yield server
    finally:
        master.terminate()
        try:
            master.wait(timeout=15)
        except subprocess.TimeoutExpired:
            master.kill()
            master.wait()
