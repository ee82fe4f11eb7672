"""`python -m simulator --host 127.0.0.1 --port 8090 --seed 1`: run the simulator under uvicorn."""

import argparse

import uvicorn

from simulator.app import create_app
from simulator.config import SimulatorConfig


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, SimulatorConfig]:
    """Command-line options and the config they describe."""
    parser = argparse.ArgumentParser(prog="python -m simulator", description="Allegro REST API simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--client-id", default="demo-client")
    parser.add_argument("--client-secret", default="demo-secret")
    parser.add_argument("--public-url", default=None, help="base URL shown in verification_uri")
    parser.add_argument("--rate-limit-per-min", type=int, default=9000)
    parser.add_argument("--block-seconds", type=float, default=60.0)
    parser.add_argument("--strict-user-agent", action="store_true")
    parser.add_argument("--device-interval", type=int, default=5, help="device-flow polling interval (s)")
    parser.add_argument("--device-expires-in", type=int, default=3600)
    parser.add_argument("--access-expires-in", type=int, default=43199)
    parser.add_argument("--refresh-grace-seconds", type=float, default=60.0)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
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
