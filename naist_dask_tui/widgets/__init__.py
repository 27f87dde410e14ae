"""Widgets of the console: one widget a file."""
