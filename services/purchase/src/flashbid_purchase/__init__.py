"""Flashbid purchase service."""
