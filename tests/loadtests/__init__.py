"""Tests of the load tests: profiles, outcomes, the runner."""
