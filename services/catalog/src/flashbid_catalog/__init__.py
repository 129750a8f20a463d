"""Flashbid catalog service."""
