"""The shop's services: auth, product, cart and order, plus the shared kit in `common`.

Layer: runtime. A service imports its own package, the kit (`services.common`) and
observability; never another service (they talk over HTTP) and nothing above the runtime.
See docs/CONVENTIONS.md for the layers.
"""
