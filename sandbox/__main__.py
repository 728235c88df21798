"""``python -m sandbox --port 8081``: the sandbox alone, at Telegram's real pace by default."""

from __future__ import annotations

import argparse

from aiohttp import web

from sandbox.app import DEFAULT_TOKEN, create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the one bot token accepted")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="speed-up of flood control and retries"
    )
    parser.add_argument("--no-flood", action="store_true", help="turn rate limits off")
    parser.add_argument("--webhook-timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    app = create_app(
        token=args.token,
        scale=args.scale,
        flood_control=not args.no_flood,
        webhook_timeout=args.webhook_timeout,
    )
    print(f"Telegram sandbox on http://{args.host}:{args.port}  token {args.token}", flush=True)
    web.run_app(app, host=args.host, port=args.port, print=None, handler_cancellation=True)


if __name__ == "__main__":
    main()
