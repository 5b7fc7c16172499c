"""Start a simulator in a subprocess and drive its test-control API (for tests and benchmarks)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

PROJECT_DIR = Path(__file__).resolve().parent.parent
READY_LINE = re.compile(r"robocall simulator listening on http://(?P<host>[^\s/]+):(?P<port>\d+)/")
CONTROL_TIMEOUT = 10.0


class SimulatorError(RuntimeError):
    """The simulator did not start, or refused a control request."""


def _account_arg(account: str | Mapping[str, Any]) -> str:
    if isinstance(account, str):
        return account
    fields = [account["api_key"], account.get("username", "demo")]
    fields += [str(account.get("balance", "2682.00")), str(account.get("call_rate", "5.50"))]
    return ":".join(str(field) for field in fields)


class SimulatorProcess:
    def __init__(self, process: subprocess.Popen[bytes], host: str, port: int, log_path: Path):
        self.process = process
        self.host = host
        self.port = port
        self.root_url = f"http://{host}:{port}/"
        self.base_url = f"{self.root_url}api/v1/"
        self._log_path = log_path
        self._final_output: str | None = None

    @classmethod
    def start(
        cls,
        *,
        speed: float = 1.0,
        seed: int = 0,
        port: int | None = None,
        latency_ms: float = 0,
        accounts: Iterable[str | Mapping[str, Any]] | None = None,
        extra_args: Sequence[str] = (),
        host: str = "127.0.0.1",
        startup_timeout: float = 10.0,
    ) -> SimulatorProcess:
        """Run `python -m simulator` and wait until it answers /_sim/health.

        With no port, the simulator binds a free one itself and reports it, so two starts can
        never race for the same port. `accounts` are "KEY[:USER[:BALANCE[:RATE]]]" strings or
        dicts with those fields; they survive reset().
        """
        command = [
            sys.executable,
            "-m",
            "simulator",
            "--host",
            host,
            "--port",
            str(port or 0),
            "--speed",
            str(speed),
            "--seed",
            str(seed),
            "--latency-ms",
            str(latency_ms),
        ]
        command += list(extra_args)
        # Keys go in the environment, not on the command line, where `ps` would show them.
        specs = " ".join(_account_arg(account) for account in accounts or ())
        log_fd, log_name = tempfile.mkstemp(prefix="robocall-simulator-", suffix=".log")
        try:
            process = subprocess.Popen(
                command,
                cwd=PROJECT_DIR,
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "SIMULATOR_ACCOUNTS": specs},
            )
        finally:
            os.close(log_fd)
        log_path = Path(log_name)
        deadline = time.monotonic() + startup_timeout
        while True:
            output = log_path.read_text(errors="replace")
            ready = READY_LINE.search(output)
            if ready:
                simulator = cls(process, ready["host"], int(ready["port"]), log_path)
                try:
                    simulator.health()
                except (requests.RequestException, SimulatorError):
                    pass
                else:
                    return simulator
            if process.poll() is not None:
                log_path.unlink(missing_ok=True)
                raise SimulatorError(
                    f"the simulator exited with code {process.returncode}:\n{output}"
                )
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                log_path.unlink(missing_ok=True)
                raise SimulatorError(
                    f"the simulator did not answer /_sim/health within {startup_timeout:g} s:\n"
                    f"{output}"
                )
            time.sleep(0.02)

    def stop(self) -> None:
        if self._final_output is not None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._final_output = self._log_path.read_text(errors="replace")
        self._log_path.unlink(missing_ok=True)

    def __enter__(self) -> SimulatorProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def output(self) -> str:
        """Everything the process printed so far (stdout and stderr)."""
        if self._final_output is not None:
            return self._final_output
        return self._log_path.read_text(errors="replace")

    # --- the control API ---

    def _control(self, method: str, name: str, payload: Mapping[str, Any] | None = None) -> Any:
        response = requests.request(
            method, f"{self.root_url}_sim/{name}", json=payload, timeout=CONTROL_TIMEOUT
        )
        if response.status_code != 200:
            try:
                reason = response.json().get("error", response.text)
            except ValueError:
                reason = response.text
            raise SimulatorError(f"{method} /_sim/{name}: HTTP {response.status_code}: {reason}")
        return response.json()

    def health(self) -> dict[str, Any]:
        return self._control("GET", "health")

    def reset(self) -> None:
        """Drop calls, stats, faults, scripts, odds and every account not given at start."""
        self._control("POST", "reset", {})

    def add_account(self, **fields: Any) -> dict[str, Any]:
        """api_key, username, balance, call_rate, retry_delays (seconds), retries."""
        return self._control("POST", "accounts", {k: _jsonable(v) for k, v in fields.items()})

    def set_faults(self, **rates: float) -> dict[str, Any]:
        """Replace the fault set, e.g. set_faults(get_call_5xx=0.2, latency_ms=50)."""
        return self._control("POST", "faults", rates)

    def clear_faults(self) -> None:
        self.set_faults()

    def set_scripts(self, scripts: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
        """Fix the attempts for caller ids, e.g. {"923001234567": [{"status": 5},
        {"status": 2, "dtmf": 1, "talk_seconds": 40}]}; an empty list removes a script."""
        payload = {caller: [dict(a) for a in attempts] for caller, attempts in scripts.items()}
        return self._control("POST", "scripts", payload)["scripted_callers"]

    def set_odds(
        self,
        answer: float | None = None,
        dtmf: Mapping[str, float] | None = None,
        unanswered: Mapping[str, float] | None = None,
    ) -> dict[str, Any]:
        """Replace the odds for unscripted calls; what is left out goes back to the default."""
        payload: dict[str, Any] = {}
        if answer is not None:
            payload["answer"] = answer
        if dtmf is not None:
            payload["dtmf"] = dict(dtmf)
        if unanswered is not None:
            payload["unanswered"] = dict(unanswered)
        return self._control("POST", "odds", payload)

    def calls(self) -> list[dict[str, Any]]:
        return self._control("GET", "calls")

    def call(self, call_id: int | str) -> dict[str, Any]:
        for call in self.calls():
            if str(call["call_id"]) == str(call_id):
                return call
        raise KeyError(f"the simulator has no call {call_id}")

    def stats(self) -> dict[str, Any]:
        return self._control("GET", "stats")


def _jsonable(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)  # Decimal
