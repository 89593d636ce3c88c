"""Integration tests of the metering room."""
