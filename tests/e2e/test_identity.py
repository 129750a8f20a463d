"""Who you are changes at once: a role or an account changed in auth binds the access tokens
already issued, at once in auth and within a second in the services that follow its changes
feed; so do reset links and email verification."""

import functools
import re
import threading
import time
import uuid

import pytest

from tests_support import open_event, open_flash_sale, place_order, problem

pytestmark = pytest.mark.stack
BOUND = 1.0  # seconds from auth's answer until every service acts on a change of a user


@pytest.fixture(scope="module")
def root(api) -> str:
    return api.admin_token()


def admin_of(api, root: str):
    """A second administrator (promoted by the first) and their access token."""
    account = api.register()
    promoted = api.patch(f"/api/auth/admin/users/{account.id}", {"role": "admin"}, root)
    assert promoted.status_code == 200, promoted.text
    return account, api.token(account)


# An admin route of each service that follows auth's feed; an administrator gets 2xx or 404.
# Bidding has no admin routes.
ADMIN_ROUTES = {
    "catalog": lambda api, token: api.post(
        "/api/catalog/admin/items", {"name": "Lamp", "category": "test"}, token
    ),
    "catalog dashboard": lambda api, token: api.get("/api/catalog/admin/events", token),
    "purchase": lambda api, token: api.get("/api/purchase/admin/orders", token),
    "reviews": lambda api, token: api.post(
        f"/api/reviews/admin/reviews/{uuid.uuid4()}/hide", None, token
    ),
}


def refused_within(since: float, call, code: str) -> float:
    """Seconds from `since` until `call()` is refused with 403 `code`, polled until BOUND."""
    while True:
        response = call()
        if response.status_code == 403:
            assert problem(response)["code"] == code, response.text
            return time.monotonic() - since
        assert time.monotonic() - since < BOUND, f"{response.status_code} after {BOUND}s"


def test_a_demoted_admin_loses_admin_power_at_once_in_auth_and_within_a_second_elsewhere(
    api, root
) -> None:
    account, token = admin_of(api, root)
    for name, call in ADMIN_ROUTES.items():  # an admin's: each service knows them as one
        assert call(api, token).status_code in (200, 201, 404), name

    demoted = api.patch(f"/api/auth/admin/users/{account.id}", {"role": "customer"}, root)
    answered = time.monotonic()
    assert demoted.status_code == 200, demoted.text
    restored = api.patch(f"/api/auth/admin/users/{account.id}", {"role": "admin"}, token)
    assert (restored.status_code, problem(restored)["code"]) == (403, "forbidden")
    listed = api.get("/api/auth/admin/users", token)
    assert (listed.status_code, problem(listed)["code"]) == (403, "forbidden")
    for call in ADMIN_ROUTES.values():
        refused_within(answered, functools.partial(call, api, token), "forbidden")
    assert api.get("/api/auth/me", root).json()["role"] == "admin"  # the first admin is not
    assert (
        api.get(f"/api/auth/admin/users?search={account.username}", root).json()["items"][0]["role"]
        == "customer"
    )


def test_a_deactivated_admin_cannot_restore_itself_nor_act_anywhere(api, root) -> None:
    account, token = admin_of(api, root)
    for name, call in ADMIN_ROUTES.items():
        assert call(api, token).status_code in (200, 201, 404), name

    off = api.patch(
        f"/api/auth/admin/users/{account.id}", {"is_active": False, "role": "customer"}, root
    )
    answered = time.monotonic()
    assert off.status_code == 200, off.text
    restored = api.patch(
        f"/api/auth/admin/users/{account.id}", {"is_active": True, "role": "admin"}, token
    )
    assert (restored.status_code, problem(restored)["code"]) == (403, "account_disabled")
    for call in ADMIN_ROUTES.values():
        refused_within(answered, functools.partial(call, api, token), "not_allowed")
    found = api.get(f"/api/auth/admin/users?search={account.username}", root).json()["items"]
    assert (found[0]["is_active"], found[0]["role"]) == (False, "customer")


def test_two_admins_demoting_each_other_at_once_leave_one_admin(api, root) -> None:
    """Each demotion checks its admin's own role in the transaction that writes: of two at
    the same moment, the second finds its admin demoted (without that, both went through)."""

    def demote(start: threading.Barrier, answers: dict, name: str, target, token: str) -> None:
        start.wait()
        answers[name] = api.patch(
            f"/api/auth/admin/users/{target.id}", {"role": "customer"}, token
        ).status_code

    for _ in range(5):
        (ada, ada_token), (bob, bob_token) = admin_of(api, root), admin_of(api, root)
        answers: dict[str, int] = {}
        start = threading.Barrier(2)
        threads = [
            threading.Thread(target=demote, args=(start, answers, "ada", bob, ada_token)),
            threading.Thread(target=demote, args=(start, answers, "bob", ada, bob_token)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(answers.values()) == [200, 403], answers
        roles = [
            api.get(f"/api/auth/admin/users?search={a.username}", root).json()["items"][0]["role"]
            for a in (ada, bob)
        ]
        assert sorted(roles) == ["admin", "customer"], roles


def test_a_deactivated_customer_writes_nothing_anywhere(api, root) -> None:
    """At once in auth; in each other service, once one write is refused (within a second)
    every other write is refused too."""
    event, offer_id = open_flash_sale(api, root, stock=5, limit=3)
    auction = open_event(api, root, "auction")
    lot = auction["offers"][0]["id"]
    account = api.register()
    token = api.token(account)
    item = event["offers"][0]["item_id"]
    orders = [place_order(api, token, offer_id).json()["id"] for _ in range(2)]
    review = {"rating": 4, "comment": "Good."}
    assert api.put(f"/api/reviews/items/{item}/review", review, token).status_code == 201
    comment = api.post(f"/api/reviews/events/{event['id']}/comments", {"body": "Hi"}, token)
    assert comment.status_code == 201, comment.text
    comment_id = comment.json()["id"]

    off = api.patch(f"/api/auth/admin/users/{account.id}", {"is_active": False}, root)
    answered = time.monotonic()
    assert off.status_code == 200, off.text
    for refused in (
        api.patch("/api/auth/me", {"display_name": "Still here"}, token),
        api.post("/api/auth/2fa/setup", None, token),
        api.put(
            "/api/auth/me/password",
            {"current_password": account.password, "new_password": "a brand new passphrase"},
            token,
        ),
    ):
        assert (refused.status_code, problem(refused)["code"]) == (403, "account_disabled")

    # reviews
    refused_within(
        answered, lambda: api.put(f"/api/reviews/items/{item}/review", review, token), "not_allowed"
    )
    for refused in (
        api.delete(f"/api/reviews/items/{item}/review", token),
        api.post(f"/api/reviews/events/{event['id']}/comments", {"body": "Again"}, token),
        api.post(f"/api/reviews/comments/{comment_id}/replies", {"body": "Me too"}, token),
        api.delete(f"/api/reviews/comments/{comment_id}", token),
    ):
        assert (refused.status_code, problem(refused)["code"]) == (403, "not_allowed")
    # purchase: an unknown order's cancel is 404 to an active buyer
    refused_within(
        answered,
        lambda: api.post(f"/api/purchase/orders/{uuid.uuid4()}/cancel", None, token),
        "not_allowed",
    )
    for refused in (
        api.post(f"/api/purchase/orders/{orders[0]}/confirm", None, token),
        api.post(f"/api/purchase/orders/{orders[1]}/cancel", None, token),
        place_order(api, token, offer_id),
    ):
        assert (refused.status_code, problem(refused)["code"]) == (403, "not_allowed")
    # bidding
    refused_within(
        answered,
        lambda: api.post(f"/api/bidding/events/{auction['id']}/join", None, token),
        "not_allowed",
    )
    bid = api.post(f"/api/bidding/lots/{lot}/bids", {"amount": "100.00"}, token)
    assert (bid.status_code, problem(bid)["code"]) == (403, "not_allowed")
    buy_now = api.post(f"/api/bidding/lots/{lot}/buy-now", None, token)
    assert (buy_now.status_code, problem(buy_now)["code"]) == (403, "not_allowed")

    stock = api.get(f"/api/purchase/events/{event['id']}/stock").json()[0]
    assert stock["remaining"] == 3  # both reservations still held, neither confirmed
    mine = api.get(f"/api/reviews/items/{item}/reviews").json()["items"]
    assert [r["comment"] for r in mine] == ["Good."]
    for path in (f"/api/catalog/admin/events/{e}/cancel" for e in (event["id"], auction["id"])):
        api.post(path, None, root)


def reset_tokens(api, inbox, email: str, count: int) -> list[str]:
    """The tokens of the last `count` reset links emailed to `email`, oldest first."""
    inbox.wait_for(email, "Reset your Flashbid password", count=count)
    found = [m for m in inbox.messages(email) if "Reset your Flashbid password" in m["Subject"]]
    texts = [
        inbox.http.get(f"/api/v1/message/{m['ID']}").json()["Text"]
        for m in sorted(found, key=lambda m: m["Created"])
    ]
    return [re.search(r"reset-password\?token=([\w-]+)", t).group(1) for t in texts][-count:]


def test_using_one_reset_link_ends_every_other(api, inbox) -> None:
    account = api.register()
    for _ in range(2):
        assert api.post("/api/auth/password/forgot", {"email": account.email}).status_code == 202
    first, second = reset_tokens(api, inbox, account.email, 2)
    used = api.post("/api/auth/password/reset", {"token": second, "new_password": "one new pass 1"})
    assert used.status_code == 204, used.text
    other = api.post("/api/auth/password/reset", {"token": first, "new_password": "two new pass 2"})
    assert (other.status_code, problem(other)["code"]) == (401, "invalid_token")
    api.login(account, "one new pass 1")


def test_two_reset_links_used_at_once_reset_the_password_once(api, inbox) -> None:
    def use(start: threading.Barrier, answers: list, token: str, password: str) -> None:
        start.wait()
        body = {"token": token, "new_password": password}
        answers.append((api.post("/api/auth/password/reset", body).status_code, password))

    for _ in range(3):
        account = api.register()
        for _ in range(2):
            assert (
                api.post("/api/auth/password/forgot", {"email": account.email}).status_code == 202
            )
        links = reset_tokens(api, inbox, account.email, 2)
        answers: list[tuple[int, str]] = []
        start = threading.Barrier(2)
        threads = [
            threading.Thread(target=use, args=(start, answers, link, f"reset number {n} ok"))
            for n, link in enumerate(links)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(status for status, _ in answers) == [204, 401], answers
        api.login(account, next(password for status, password in answers if status == 204))


def test_changing_the_password_ends_the_reset_links_sent_before(api, inbox) -> None:
    account = api.register()
    assert api.post("/api/auth/password/forgot", {"email": account.email}).status_code == 202
    [link] = reset_tokens(api, inbox, account.email, 1)
    changed = api.put(
        "/api/auth/me/password",
        {"current_password": account.password, "new_password": "changed it myself 7"},
        api.token(account),
    )
    assert changed.status_code == 204, changed.text
    late = api.post("/api/auth/password/reset", {"token": link, "new_password": "taken over 99"})
    assert (late.status_code, problem(late)["code"]) == (401, "invalid_token")
    api.login(account, "changed it myself 7")


def test_verifying_the_address_unlocks_the_session_in_use_at_once(api, root) -> None:
    _, offer_id = open_flash_sale(api, root, stock=5, limit=1)
    ranked = open_event(api, root, "ranked")
    bids = f"/api/bidding/sessions/{ranked['offers'][0]['id']}/bids"
    account = api.register(verified=False)
    token = api.token(account)  # signed while the address is not verified
    for refused in (place_order(api, token, offer_id), api.post(bids, {"price": "50"}, token)):
        assert (refused.status_code, problem(refused)["code"]) == (403, "not_allowed")

    api.verify(account)
    ordered = place_order(api, token, offer_id)
    assert ordered.status_code == 201, ordered.text
    bid = api.post(bids, {"price": "50"}, token)
    assert bid.status_code == 201, bid.text
    api.post(f"/api/catalog/admin/events/{ranked['id']}/cancel", None, root)
