"""Tests of the experiments: definitions, verdicts, schedule, report, real runs."""
