"""`python -m services.product [--host H] [--port P]`: the product service on Flask's threaded server."""

from __future__ import annotations

import argparse

from services.product import create_app
from services.product.catalog_access import is_loopback
from services.product.config import ProductSettings


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m services.product", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, help=f"port (default {ProductSettings.default_port})")
    args = parser.parse_args(argv)
    # Migrations run at start unless PRODUCT_AUTO_MIGRATE=off, so a fresh clone just works.
    overrides: dict[str, object] = {"auto_migrate": ProductSettings.from_env().auto_migrate is not False}
    if args.port:
        overrides["port"] = args.port
    # On loopback only, the seed's tokenless curl keeps working (with a warning in the log).
    app = create_app(overrides, open_catalog_writes=is_loopback(args.host))
    app.run(host=args.host, port=app.config["SETTINGS"].port, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
