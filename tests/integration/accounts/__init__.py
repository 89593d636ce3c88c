"""Integration tests of the accounts room."""
