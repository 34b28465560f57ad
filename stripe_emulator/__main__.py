"""``python -m stripe_emulator --port 12111 [--webhook URL=WHSEC ...]``; see docs/emulator.md."""

import argparse
import logging
import re
import signal
import sys
import threading

from . import API_VERSION, DEFAULT_PUBLISHABLE_KEY, DEFAULT_SECRET_KEY, restricted
from .app import Config, Emulator
from .server import make_server

log = logging.getLogger("stripe_emulator")

# dj-stripe refuses keys that do not look real.
KEY_SHAPE = {
    "sk": re.compile(r"sk_test_[A-Za-z0-9]{24,}"),
    "pk": re.compile(r"pk_test_[A-Za-z0-9]{24,}"),
}


def _webhook(value: str) -> tuple[str, str]:
    url, sep, secret = value.rpartition("=")
    if not sep or not url.startswith(("http://", "https://")) or not secret:
        raise argparse.ArgumentTypeError("expected URL=WHSEC, e.g. http://127.0.0.1:8000/hook=whsec_x")
    return url, secret


def _schedule(value: str) -> list[float]:
    try:
        delays = [float(part) for part in value.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError("expected seconds separated by commas") from exc
    if any(d < 0 for d in delays):
        raise argparse.ArgumentTypeError("delays cannot be negative")
    return delays


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m stripe_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111, help="0 picks a free port")
    parser.add_argument("--secret-key", default=DEFAULT_SECRET_KEY)
    parser.add_argument("--publishable-key", default=DEFAULT_PUBLISHABLE_KEY)
    parser.add_argument("--webhook", type=_webhook, action="append", default=[],
                        metavar="URL=WHSEC",
                        help="register a webhook endpoint for all events with this signing "
                        "secret (repeatable)")
    parser.add_argument("--webhook-retry-schedule", type=_schedule, default=[1, 2, 4, 8, 16],
                        metavar="S,S,...",
                        help="seconds to wait before each retry of a failed delivery")
    parser.add_argument("--webhook-timeout", type=float, default=10.0,
                        help="seconds before a webhook delivery counts as failed")
    parser.add_argument("--webhook-events", default="*", metavar="TYPE,TYPE,...",
                        help="event types the --webhook endpoints receive (default: all), as one "
                        "selects them for an endpoint in Stripe's dashboard")
    parser.add_argument("--webhook-workers", type=int, default=4,
                        help="deliveries in flight at once (Stripe delivers while traffic happens; "
                        "raise it for load runs)")
    parser.add_argument("--snapshot", metavar="FILE",
                        help="load state from FILE at start, save it there on clean shutdown")
    parser.add_argument("--snapshot-dir", metavar="DIR",
                        help="where POST /_emulator/snapshot {\"name\": ...} writes (default: the --snapshot "
                        "file's directory); a name is never a path")
    parser.add_argument("--api-version", default=API_VERSION)
    parser.add_argument("--restricted-key", action="append", default=[], metavar="rk_test_...=RESOURCE:LEVEL,...",
                        help="a restricted key and its permissions (e.g. payment_intent:write,charge:read); "
                        "repeatable")
    parser.add_argument("--statement-prefix", default="BACKSTOP",
                        help="the account's card statement prefix (GET /v1/account), printed on every charge")
    parser.add_argument("--rate-limits", choices=["test", "live"], default=None,
                        help="answer 429 rate_limit past Stripe's documented limits: test mode 25 "
                        "requests/s overall, live 100/s overall; 25/s per endpoint (search 20/s). "
                        "Default: no limits")
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    if not 1 <= args.webhook_workers <= 256:
        parser.error("--webhook-workers must be between 1 and 256")
    if not KEY_SHAPE["sk"].fullmatch(args.secret_key):
        parser.error("--secret-key must be sk_test_ followed by at least 24 letters or digits")
    if not KEY_SHAPE["pk"].fullmatch(args.publishable_key):
        parser.error("--publishable-key must be pk_test_ followed by at least 24 letters or digits")
    args.restricted_keys = {}
    for given in args.restricted_key:
        key, _, permissions = given.partition("=")
        if not restricted.KEY_SHAPE.fullmatch(key):
            parser.error("--restricted-key must start with rk_test_ followed by at least 24 letters or digits")
        try:
            args.restricted_keys[key] = restricted.parse_permissions(permissions)
        except ValueError as exc:
            parser.error(f"--restricted-key: {exc}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    config = Config(
        host=args.host,
        port=args.port,
        secret_key=args.secret_key,
        publishable_key=args.publishable_key,
        webhooks=args.webhook,
        retry_schedule=args.webhook_retry_schedule,
        webhook_timeout=args.webhook_timeout,
        webhook_workers=args.webhook_workers,
        webhook_events=[e.strip() for e in args.webhook_events.split(",") if e.strip()] or ["*"],
        snapshot=args.snapshot,
        snapshot_dir=args.snapshot_dir,
        api_version=args.api_version,
        statement_prefix=args.statement_prefix,
        restricted_keys=args.restricted_keys,
        rate_limits=args.rate_limits,
    )
    emu = Emulator(config)
    server = make_server(emu)
    config.port = server.server_address[1]
    emu.webhooks.start()

    stop = threading.Event()

    def request_stop(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                               name="http", daemon=True)
    serving.start()
    print(f"Stripe emulator listening on http://{config.host}:{config.port}", flush=True)
    for url, _ in config.webhooks:
        log.info("webhook endpoint: %s", url)
    if config.rate_limits:
        log.info("Stripe's %s-mode rate limits enforced", config.rate_limits)

    while not stop.wait(0.5):
        pass
    log.info("shutting down")
    server.shutdown()
    server.server_close()
    emu.webhooks.stop()
    if config.snapshot:
        size = emu.save_snapshot(config.snapshot)
        log.info("snapshot written to %s (%d bytes)", config.snapshot, size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
