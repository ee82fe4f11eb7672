"""`python -m simulator --host 127.0.0.1 --port 8090 --seed 1`: run the simulator under uvicorn."""

import argparse

import uvicorn

from simulator.app import create_app
from simulator.config import SimulatorConfig


def build_parser() -> argparse.ArgumentParser:
    """The command line's options, each with its help text."""
    parser = argparse.ArgumentParser(prog="python -m simulator", description="Allegro REST API simulator")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8090, help="port (default: %(default)s)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the generated data: same seed, same world (default: 0)"
    )
    parser.add_argument(
        "--client-id", default="demo-client", help="the one registered OAuth client (default: %(default)s)"
    )
    parser.add_argument(
        "--client-secret", default="demo-secret", help="its secret, for Basic auth (default: %(default)s)"
    )
    parser.add_argument(
        "--public-url",
        default=None,
        help="base URL shown in verification_uri (default: http://HOST:PORT)",
    )
    parser.add_argument(
        "--rate-limit-per-min",
        type=int,
        default=9000,
        help="REST requests per client id in a sliding minute before 429 (default: %(default)s)",
    )
    parser.add_argument(
        "--block-seconds",
        type=float,
        default=60.0,
        help="how long a client id past the limit is blocked (default: %(default)s)",
    )
    parser.add_argument(
        "--strict-user-agent",
        action="store_true",
        help="refuse REST requests without a User-Agent (403 UserAgentRequired), as Allegro does",
    )
    parser.add_argument(
        "--device-interval",
        type=int,
        default=5,
        help="device-flow polling interval, s (default: %(default)s)",
    )
    parser.add_argument(
        "--device-expires-in",
        type=int,
        default=3600,
        help="lifetime of a device and user code, s (default: %(default)s)",
    )
    parser.add_argument(
        "--access-expires-in",
        type=int,
        default=43199,
        help="lifetime of an access token, s (default: %(default)s)",
    )
    parser.add_argument(
        "--refresh-grace-seconds",
        type=float,
        default=60.0,
        help="how long a used refresh token still works, s (default: %(default)s)",
    )
    parser.add_argument("--log-level", default="warning", help="uvicorn's log level (default: %(default)s)")
    return parser


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, SimulatorConfig]:
    """Command-line options and the config they describe."""
    args = build_parser().parse_args(argv)
    config = SimulatorConfig(
        seed=args.seed,
        client_id=args.client_id,
        client_secret=args.client_secret,
        public_url=args.public_url or f"http://{args.host}:{args.port}",
        rate_limit_per_min=args.rate_limit_per_min,
        block_seconds=args.block_seconds,
        strict_user_agent=args.strict_user_agent,
        device_poll_interval=args.device_interval,
        device_code_expires_in=args.device_expires_in,
        access_token_expires_in=args.access_expires_in,
        refresh_grace_seconds=args.refresh_grace_seconds,
    )
    return args, config


def main() -> None:
    """Entry point."""
    args, config = parse_args()
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
