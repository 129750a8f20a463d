"""Emails to users, sent through auth's outbox (`POST /internal/notifications`)."""

import logging

import httpx
import msgspec

from flashbid_shared.contracts import NotificationsTaken

log = logging.getLogger(__name__)


async def notify(http: httpx.AsyncClient, auth_url: str, notifications: list[dict]) -> None:
    """Emails through auth, together. One that auth refuses (an unknown user or template)
    would be refused again: it is logged, not retried. A malformed one, which makes auth
    refuse the whole call, is found by sending each alone, so the others still go."""
    url = f"{auth_url}/api/auth/internal/notifications"
    response = await http.post(url, json={"notifications": notifications})
    if response.status_code == 422:
        if len(notifications) == 1:
            log.error("auth refused a malformed email: %r", notifications[0])
        else:
            for notification in notifications:
                await notify(http, auth_url, [notification])
        return
    response.raise_for_status()
    refused = msgspec.json.decode(response.content, type=NotificationsTaken).refused
    if refused:
        count, example = f"{len(refused)} of {len(notifications)}", notifications[refused[0]]
        log.warning("auth refused %s emails, the first: %r", count, example)
