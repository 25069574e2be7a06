"""Runnable example orchestrators for mattrace (offline by default)."""
