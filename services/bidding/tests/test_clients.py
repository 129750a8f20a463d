import asyncio

import httpx
import msgspec
import pytest

from flashbid_bidding.clients import Peers


def peers(handler) -> Peers:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return Peers(http, "http://catalog", "http://purchase", "http://auth")


def email(user: str, title: str = "Lamp") -> dict:
    return {"user_id": user, "template": "outbid", "data": {"title": title}}


class Auth:
    """Auth's notifications route: a batch with a malformed email (a title that is not a
    string) is refused whole (422); otherwise the users it does not know are named."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        batch = msgspec.json.decode(request.content)["notifications"]
        self.calls.append([n["user_id"] for n in batch])
        if any(not isinstance(n["data"]["title"], str) for n in batch):
            return httpx.Response(422, json={"code": "invalid_input"})
        refused = [i for i, n in enumerate(batch) if n["user_id"] == "unknown"]
        return httpx.Response(202, json={"refused": refused})


def test_emails_go_to_auth_in_one_call_and_the_refused_are_not_sent_again() -> None:
    auth = Auth()
    asyncio.run(peers(auth).notify([email("ada"), email("unknown"), email("bob")]))
    assert auth.calls == [["ada", "unknown", "bob"]]


def test_a_malformed_email_does_not_hold_up_the_others() -> None:
    auth = Auth()
    asyncio.run(peers(auth).notify([email("ada"), email("bob", title=7), email("cy")]))
    assert auth.calls == [["ada", "bob", "cy"], ["ada"], ["bob"], ["cy"]]


def test_auth_away_fails_the_call_so_that_it_is_tried_again() -> None:
    def away(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    with pytest.raises(httpx.HTTPStatusError):
        asyncio.run(peers(away).notify([email("ada")]))
