"""Velocity networks trained and evaluated by the harness."""
