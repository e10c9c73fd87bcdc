"""`python -m bench`: what Breakwater costs and how it scales (see bench/README.md)."""
