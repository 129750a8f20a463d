"""Flashbid bidding service."""
