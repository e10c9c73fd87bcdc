"""Helpers shared by the test suites: free ports, databases, tokens, running processes."""
