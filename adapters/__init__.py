"""Adapters: real implementations of the application's ports."""
