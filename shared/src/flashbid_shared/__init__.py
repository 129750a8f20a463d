"""Flashbid's shared library: what every service needs, and nothing that is one service's."""
