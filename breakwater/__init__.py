"""Breakwater's command line and local supervisor: thin layers over the library packages."""
