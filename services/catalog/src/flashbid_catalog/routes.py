from typing import Any

from litestar import get

from flashbid_shared.tokens import admin_required


@get("/admin/dashboard", operation_id="admin_dashboard", tags=["admin"], guards=[admin_required])
async def admin_dashboard() -> dict[str, Any]:
    """Counts by status and the live events' figures (filled in as the events arrive)."""
    return {"events_by_status": {}, "events": []}


ROUTES = [admin_dashboard]
