"""Tests of the API gateway against fake upstreams on loopback ports."""
