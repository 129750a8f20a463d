"""Flashbid reviews service."""
