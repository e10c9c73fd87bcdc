"""`python -m services.cart [--host H] [--port P]`: the cart service on Flask's threaded server."""

from __future__ import annotations

import argparse

from services.cart import create_app
from services.cart.config import CartSettings


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, migrate the database (unless CART_AUTO_MIGRATE=off) and serve."""
    parser = argparse.ArgumentParser(prog="python -m services.cart", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    overrides = {"auto_migrate": True} if CartSettings.from_env().auto_migrate is None else {}
    if args.port is not None:
        overrides["port"] = args.port
    app = create_app(overrides)
    app.run(host=args.host, port=app.config["SETTINGS"].port, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
