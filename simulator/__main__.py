"""`python -m simulator`: serve the simulated provider until interrupted."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from simulator.server import SimulatorServer
from simulator.state import (
    DEFAULT_RETRY_DELAYS,
    InvalidInput,
    SimulatorState,
    account_from_spec,
    parse_retry_delays,
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m simulator",
        description="A local stand-in for the Robo Call Pakistan API (under /api/ and /api/v1/), "
        "with a test-control API under /_sim/.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001, help="0 picks a free port")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="divide call durations by this (not retry delays)"
    )
    parser.add_argument("--seed", type=int, default=0, help="same seed, same call plans and faults")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every API request")
    parser.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="KEY[:USERNAME[:BALANCE[:RATE]]]",
        help="an account that survives /_sim/reset; repeat for more. A command line is visible "
        "to every user of the machine (ps): pass keys in SIMULATOR_ACCOUNTS instead, the same "
        "specs separated by spaces",
    )
    parser.add_argument(
        "--retry-delays",
        default=",".join(f"{d:g}" for d in DEFAULT_RETRY_DELAYS),
        metavar="SECONDS,SECONDS,...",
        help="seconds between an unanswered attempt and the next (literal, not sped up)",
    )
    parser.add_argument("--verbose", action="store_true", help="log each request's method and path")
    args = parser.parse_args(argv)
    if args.speed <= 0:
        parser.error("--speed must be above zero")
    if args.latency_ms < 0:
        parser.error("--latency-ms must be zero or more")
    try:
        args.retry_delays = parse_retry_delays(args.retry_delays)
        # The error messages never quote the spec: it holds an API key.
        specs = [*args.account, *os.environ.get("SIMULATOR_ACCOUNTS", "").split()]
        args.account = [account_from_spec(spec, args.retry_delays) for spec in specs]
    except InvalidInput as error:
        parser.error(f"--account/--retry-delays: {error}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    state = SimulatorState(
        seed=args.seed,
        speed=args.speed,
        accounts=args.account,
        default_retry_delays=args.retry_delays,
        latency_ms=args.latency_ms,
    )
    server = SimulatorServer((args.host, args.port), state, verbose=args.verbose)
    host, port = str(server.server_address[0]), server.server_address[1]
    print(f"robocall simulator listening on http://{host}:{port}/api/v1/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
