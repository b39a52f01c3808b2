"""``sniper-otel exchange serve``: the exchange simulator as MEXC spot REST v3 on loopback.

It runs on the real clock (a latency fault is a real delay for the bots talking to it)
until interrupted (Ctrl-C, SIGTERM) or for ``--duration`` seconds. Exit status: 0 after a
clean shutdown, 2 for bad input.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from .server import DEFAULT_API_KEY, DEFAULT_API_SECRET, ExchangeServer


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sniper-otel exchange",
        description="Serve the deterministic exchange simulator as MEXC spot REST API v3.",
    )
    sub = p.add_subparsers(dest="action", required=True)
    serve = sub.add_parser("serve", help="serve on a loopback port until interrupted")
    serve.add_argument("--port", type=int, default=0,
                       help="port on 127.0.0.1 (default 0: a free port, printed)")
    serve.add_argument("--seed", type=int, default=0, help="seed of the simulator (0)")
    serve.add_argument("--api-key", default=DEFAULT_API_KEY,
                       help=f"the API key clients must send (default {DEFAULT_API_KEY})")
    serve.add_argument("--api-secret", default=DEFAULT_API_SECRET,
                       help="the secret that signs requests (default: the simulator's own)")
    serve.add_argument("--balance", type=float, default=10_000.0,
                       help="starting USDT balance (10000)")
    serve.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                       help="stop after this many seconds (default: until interrupted)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be 0-65535, got {args.port}")
    if args.duration is not None and args.duration <= 0:
        parser.error(f"--duration must be > 0 seconds, got {args.duration:g}")
    if args.balance < 0:
        parser.error(f"--balance must be >= 0, got {args.balance:g}")
    stop = threading.Event()

    def interrupted(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, interrupted)
    try:
        server = ExchangeServer.create(seed=args.seed, port=args.port, api_key=args.api_key,
                                       api_secret=args.api_secret,
                                       initial_balance=args.balance)
        with server:
            print(f"MEXC spot v3 simulator on {server.url} (seed {args.seed}, "
                  f"api key {args.api_key!r}); the listings calendar is GET "
                  f"{server.url}/api/v3/calendar", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                stop.wait(args.duration)
            served = len(server.calls)
    except OSError as exc:
        print(f"sniper-otel exchange: cannot listen on 127.0.0.1:{args.port}: {exc}",
              file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"stopped after {served} request{'s' if served != 1 else ''}", flush=True)
    return 0
