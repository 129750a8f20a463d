"""Flashbid auth service."""
