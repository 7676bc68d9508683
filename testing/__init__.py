"""Test doubles and process helpers, shared by the tests and the benchmark; never deployed."""
