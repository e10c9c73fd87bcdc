"""The shop's services: auth, product, cart and order, plus the shared kit in `common`."""
