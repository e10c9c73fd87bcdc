"""Load tests of the shop: Locust users and shapes, and a runner that keeps the results."""
