"""Contract tests: every store port against every implementation."""
