"""Bidding's tables and the stores over them."""

import sqlalchemy as sa

metadata = sa.MetaData()
