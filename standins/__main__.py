"""`python -m standins --port N`: the shop stand-ins until interrupted.

STANDINS_SHOPIFY_TOKENS (in the environment, never on the command line): Shopify access tokens,
separated by spaces, of shops that know every order id (the `make run` demo's).
"""

from __future__ import annotations

import argparse
import os
import sys

from standins.server import StandIns


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m standins", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002, help="0 picks a free port")
    args = parser.parse_args(argv)
    tokens = tuple(os.environ.get("STANDINS_SHOPIFY_TOKENS", "").split())
    stand_ins = StandIns(args.port, args.host, any_order_tokens=tokens)
    print(f"shop stand-ins listening on {stand_ins.root_url}/", flush=True)
    try:
        stand_ins.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stand_ins.server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
