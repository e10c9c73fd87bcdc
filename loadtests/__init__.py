"""Load tests of the shop: Locust users and shapes, and a runner that keeps the results.

Layer: load and experiments (beside `chaos.experiments`): it drives the runtime over HTTP and
may use the local stack; reports and the CLI sit above it.
"""
