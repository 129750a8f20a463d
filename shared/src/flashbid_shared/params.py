"""Query and header parameters every service's routes share."""

import re
from typing import Annotated

from litestar.params import Parameter

from flashbid_shared.inputs import LINE_PATTERN

Limit = Annotated[int, Parameter(ge=1, le=100)]
Offset = Annotated[int, Parameter(ge=0, le=100_000)]
# Stripe's semantics: the same key and body answer the first result (POST of orders and bids).
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
IdempotencyKey = Annotated[
    str | None,
    Parameter(header="Idempotency-Key", pattern=IDEMPOTENCY_KEY.pattern, required=False),
]
Search = Annotated[str | None, Parameter(max_length=100, pattern=LINE_PATTERN)]
