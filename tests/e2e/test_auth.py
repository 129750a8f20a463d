"""Auth as users meet it, through the gateway, with codes and links read from the inbox."""

import re
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pyotp
import pytest

from tests_support import ADMIN, PASSWORD, problem

pytestmark = pytest.mark.stack


def code_of(response) -> tuple[int, str]:
    return response.status_code, problem(response)["code"]


def admin_token(api) -> str:
    response = api.post("/api/auth/login", {"login": ADMIN[0], "password": ADMIN[1]})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def test_register_verify_and_sign_in(api) -> None:
    account = api.register(verified=False, display_name="Zoë")
    first = api.login(account)
    me = api.get("/api/auth/me", first["access_token"]).json()
    assert me["email_verified"] is False and me["display_name"] == "Zoë"
    assert me["role"] == "customer" and me["weight"] == 1.0 and me["mfa_enabled"] is False
    api.verify(account)
    tokens = api.login(account)  # by username; by email too:
    assert (
        api.post(
            "/api/auth/login", {"login": account.email.upper(), "password": PASSWORD}
        ).status_code
        == 200
    )
    me = api.get("/api/auth/me", tokens["access_token"]).json()
    assert me["email_verified"] is True
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["email_verified"] is True and claims["sub"] == account.id
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 900


def test_registration_refuses_roles_weak_passwords_and_taken_names(api) -> None:
    account = api.register()
    for extra in ({"role": "admin"}, {"is_admin": True}, {"weight": 9}):
        body = {"email": "x1@example.com", "username": "x1user", "password": PASSWORD, **extra}
        assert code_of(api.post("/api/auth/register", body)) == (422, "invalid_input")
    for weak in ("short", "1234567890", "password123", "x2user-is-me", "aaaaaaaaaaaa"):
        body = {"email": "x2@example.com", "username": "x2user", "password": weak}
        response = api.post("/api/auth/register", body)
        assert response.status_code == 422, weak
    same_email = {"email": account.email.upper(), "username": "other1", "password": PASSWORD}
    assert code_of(api.post("/api/auth/register", same_email)) == (409, "email_taken")
    same_name = {
        "email": "x3@example.com",
        "username": account.username.upper(),
        "password": PASSWORD,
    }
    assert code_of(api.post("/api/auth/register", same_name)) == (409, "username_taken")
    assert code_of(
        api.post(
            "/api/auth/register", {"email": "not-an-email", "username": "abc", "password": PASSWORD}
        )
    ) == (422, "invalid_input")


def test_verification_codes_allow_five_wrong_attempts(api) -> None:
    account = api.register(verified=False)
    code = api.email_code(account)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        response = api.post("/api/auth/verify-email", {"email": account.email, "code": wrong})
        assert code_of(response) == (400, "invalid_code")
    response = api.post("/api/auth/verify-email", {"email": account.email, "code": code})
    assert code_of(response) == (429, "too_many_attempts")
    resend = api.post("/api/auth/verify-email/resend", {"email": account.email})
    assert code_of(resend) == (429, "resend_too_soon")
    assert int(resend.headers["retry-after"]) > 0
    # unknown addresses get the same silence as known ones
    assert (
        api.post("/api/auth/verify-email/resend", {"email": "nobody@example.com"}).status_code
        == 202
    )


def test_wrong_passwords_look_alike_then_lock_the_account(api) -> None:
    account = api.register()
    unknown = api.post("/api/auth/login", {"login": "nobody-here", "password": "whatever-123"})
    wrong = api.post("/api/auth/login", {"login": account.username, "password": "whatever-123"})
    assert code_of(unknown) == code_of(wrong) == (401, "invalid_credentials")
    assert unknown.json()["detail"] == wrong.json()["detail"]
    for _ in range(4):
        api.post("/api/auth/login", {"login": account.username, "password": "whatever-123"})
    locked = api.post("/api/auth/login", {"login": account.username, "password": PASSWORD})
    assert code_of(locked) == (429, "login_throttled")
    assert 0 < int(locked.headers["retry-after"]) <= 15


def test_refresh_rotates_and_reuse_ends_the_family(api) -> None:
    account = api.register()
    first = api.login(account)
    second = api.post("/api/auth/refresh", {"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert api.get("/api/auth/me", second["access_token"]).status_code == 200
    reused = api.post("/api/auth/refresh", {"refresh_token": first["refresh_token"]})
    assert code_of(reused) == (401, "token_reused")
    # the thief's copy and the owner's copy are both dead now
    after = api.post("/api/auth/refresh", {"refresh_token": second["refresh_token"]})
    assert code_of(after) == (401, "invalid_token")
    # another session of the same user is untouched
    other = api.login(account)
    assert (
        api.post("/api/auth/refresh", {"refresh_token": other["refresh_token"]}).status_code == 200
    )


def test_logout_ends_the_session(api) -> None:
    tokens = api.login(api.register())
    assert (
        api.post("/api/auth/logout", {"refresh_token": tokens["refresh_token"]}).status_code == 204
    )
    again = api.post("/api/auth/refresh", {"refresh_token": tokens["refresh_token"]})
    assert code_of(again) == (401, "invalid_token")


def test_profile_and_password_change_ends_other_sessions(api) -> None:
    account = api.register()
    here, elsewhere = api.login(account), api.login(account)
    renamed = api.patch("/api/auth/me", {"display_name": "New Name"}, here["access_token"])
    assert renamed.json()["display_name"] == "New Name"
    assert code_of(api.patch("/api/auth/me", {"weight": 5.0}, here["access_token"])) == (
        422,
        "invalid_input",
    )
    wrong = api.put(
        "/api/auth/me/password",
        {"current_password": "nope-nope-1", "new_password": "a brand new passphrase"},
        here["access_token"],
    )
    assert code_of(wrong) == (401, "invalid_credentials")
    changed = api.put(
        "/api/auth/me/password",
        {"current_password": PASSWORD, "new_password": "a brand new passphrase"},
        here["access_token"],
    )
    assert changed.status_code == 204
    assert (
        api.post("/api/auth/refresh", {"refresh_token": elsewhere["refresh_token"]}).status_code
        == 401
    )
    assert (
        api.post("/api/auth/refresh", {"refresh_token": here["refresh_token"]}).status_code == 200
    )
    api.login(account, "a brand new passphrase")


def test_forgotten_password_reset_by_emailed_link(api, inbox) -> None:
    account = api.register()
    session = api.login(account)
    assert api.post("/api/auth/password/forgot", {"email": "nobody@example.com"}).status_code == 202
    assert api.post("/api/auth/password/forgot", {"email": account.email}).status_code == 202
    text = inbox.wait_for(account.email, "Reset your Flashbid password")
    token = re.search(r"reset-password\?token=([\w-]+)", text).group(1)
    weak = api.post("/api/auth/password/reset", {"token": token, "new_password": "short"})
    assert code_of(weak) == (422, "weak_password")
    done = api.post(
        "/api/auth/password/reset", {"token": token, "new_password": "reset and renewed 42"}
    )
    assert done.status_code == 204
    again = api.post(
        "/api/auth/password/reset", {"token": token, "new_password": "another one entirely"}
    )
    assert code_of(again) == (401, "invalid_token")
    assert (
        api.post("/api/auth/refresh", {"refresh_token": session["refresh_token"]}).status_code
        == 401
    )
    failed = api.post("/api/auth/login", {"login": account.username, "password": PASSWORD})
    assert failed.status_code == 401
    api.login(account, "reset and renewed 42")


def totp_at(secret: str, offset_steps: int) -> str:
    return pyotp.TOTP(secret).at(datetime.now(UTC) + timedelta(seconds=30 * offset_steps))


def test_two_factor_sign_in_with_single_use_codes(api) -> None:
    account = api.register()
    token = api.token(account)
    setup = api.post("/api/auth/2fa/setup", token=token).json()
    assert setup["otpauth_uri"].startswith("otpauth://totp/Flashbid:")
    secret = setup["secret"]
    assert api.post("/api/auth/2fa/enable", {"code": "000000"}, token).status_code == 400
    assert api.post("/api/auth/2fa/enable", {"code": totp_at(secret, -1)}, token).status_code == 204
    assert api.get("/api/auth/2fa/status", token).json() == {"enabled": True}

    challenge = api.login(account)
    assert challenge["mfa_required"] is True and "access_token" not in challenge
    # the mfa token is good for nothing else
    elsewhere = api.get("/api/catalog/admin/dashboard", challenge["mfa_token"])
    assert elsewhere.status_code == 401
    code = totp_at(secret, 0)
    tokens = api.post("/api/auth/login/mfa", {"mfa_token": challenge["mfa_token"], "code": code})
    assert tokens.status_code == 200 and tokens.json()["access_token"]
    replay = api.post(
        "/api/auth/login/mfa", {"mfa_token": api.login(account)["mfa_token"], "code": code}
    )
    assert code_of(replay) == (400, "invalid_code")
    forged = api.post(
        "/api/auth/login/mfa",
        {"mfa_token": tokens.json()["access_token"], "code": totp_at(secret, 1)},
    )
    assert code_of(forged) == (401, "invalid_token")

    access = tokens.json()["access_token"]
    bad_password = api.post(
        "/api/auth/2fa/disable",
        {"password": "wrong-password-1", "code": totp_at(secret, 1)},
        access,
    )
    assert code_of(bad_password) == (401, "invalid_credentials")
    off = api.post(
        "/api/auth/2fa/disable", {"password": PASSWORD, "code": totp_at(secret, 1)}, access
    )
    assert off.status_code == 204
    assert "access_token" in api.login(account)


def test_admins_manage_users_and_nobody_else_can(api) -> None:
    account = api.register()
    customer = api.token(account)
    admin = admin_token(api)
    assert code_of(api.get("/api/auth/admin/users")) == (401, "unauthenticated")
    assert code_of(api.get("/api/auth/admin/users", customer)) == (403, "forbidden")
    assert code_of(
        api.patch(f"/api/auth/admin/users/{account.id}", {"role": "admin"}, customer)
    ) == (403, "forbidden")

    found = api.get("/api/auth/admin/users", admin, params={"search": account.username}).json()
    assert found["total"] == 1 and found["items"][0]["id"] == account.id
    admins = api.get("/api/auth/admin/users", admin, params={"role": "admin"}).json()
    assert all(u["role"] == "admin" for u in admins["items"]) and admins["total"] >= 1

    weighted = api.patch(f"/api/auth/admin/users/{account.id}", {"weight": 2.5}, admin)
    assert weighted.json()["weight"] == 2.5
    assert api.get("/api/auth/me", customer).json()["weight"] == 2.5
    assert code_of(api.patch(f"/api/auth/admin/users/{account.id}", {"weight": -1}, admin)) == (
        422,
        "invalid_input",
    )

    session = api.login(account)
    api.patch(f"/api/auth/admin/users/{account.id}", {"is_active": False}, admin)
    refused = api.post("/api/auth/login", {"login": account.username, "password": PASSWORD})
    assert code_of(refused) == (403, "account_disabled")
    assert (
        api.post("/api/auth/refresh", {"refresh_token": session["refresh_token"]}).status_code
        == 401
    )
    inactive = api.get(
        "/api/auth/admin/users", admin, params={"active": "false", "search": account.username}
    ).json()
    assert [u["id"] for u in inactive["items"]] == [account.id]
    api.patch(f"/api/auth/admin/users/{account.id}", {"is_active": True}, admin)
    api.login(account)


def test_an_admin_cannot_lock_themselves_out(api) -> None:
    admin = admin_token(api)
    me = api.get("/api/auth/me", admin).json()
    response = api.patch(f"/api/auth/admin/users/{me['id']}", {"is_active": False}, admin)
    assert code_of(response) == (409, "cannot_change_self")


def test_unknown_users_are_404_for_admins(api) -> None:
    response = api.patch(
        "/api/auth/admin/users/00000000-0000-0000-0000-000000000000",
        {"weight": 2.0},
        admin_token(api),
    )
    assert code_of(response) == (404, "user_not_found")


NOBODY = "00000000-0000-4000-8000-000000000000"


def service_headers(api) -> dict[str, str]:
    grant = api.post(
        "/api/auth/token",
        data={"grant_type": "client_credentials", "client_id": "bidding",
              "client_secret": "dev-bidding-secret"},
    )  # fmt: skip
    return {"Authorization": f"Bearer {grant.json()['access_token']}"}


def test_services_look_users_up_in_batches_and_customers_cannot(api, profile) -> None:
    known, unverified = api.register(), api.register(verified=False)
    lookup = f"{profile.url('auth')}/api/auth/internal/users/lookup"  # never through nginx
    body = {"ids": [known.id, NOBODY, unverified.id]}

    found = httpx.post(lookup, json=body, headers=service_headers(api))
    assert found.status_code == 200, found.text
    users = {user["id"]: user for user in found.json()["users"]}
    assert set(users) == {known.id, unverified.id}  # an unknown id is left out
    assert users[known.id] | {"display_name": ""} == {
        "id": known.id, "display_name": "", "weight": 1.0, "email_verified": True,
        "is_active": True, "role": "customer",
    }  # fmt: skip
    assert users[unverified.id]["email_verified"] is False

    as_customer = httpx.post(
        lookup, json=body, headers={"Authorization": f"Bearer {api.token(known)}"}
    )
    assert code_of(as_customer) == (403, "forbidden")


def test_services_follow_the_changes_to_users_and_customers_cannot(api, profile) -> None:
    changes = f"{profile.url('auth')}/api/auth/internal/users/changes"  # never through nginx
    headers = service_headers(api)
    start = httpx.get(changes, headers=headers).json()
    assert start["users"] == []  # only where to start
    ada, bob, cy = api.register(), api.register(), api.register()  # verified: a change

    admin = admin_token(api)
    api.patch(f"/api/auth/admin/users/{ada.id}", {"weight": 2.5}, admin)
    api.patch(f"/api/auth/admin/users/{bob.id}", {"is_active": False}, admin)
    api.patch(f"/api/auth/admin/users/{cy.id}", {"role": "admin"}, admin)
    changed = httpx.get(changes, params={"since": start["until"]}, headers=headers).json()
    users = {user["id"]: user for user in changed["users"]}
    assert (users[ada.id]["weight"], users[bob.id]["is_active"]) == (2.5, False)
    assert (users[cy.id]["role"], users[cy.id]["email_verified"]) == ("admin", True)
    assert changed["until"] >= start["until"]

    as_customer = httpx.get(changes, headers={"Authorization": f"Bearer {api.token(ada)}"})
    assert code_of(as_customer) == (403, "forbidden")
    malformed = httpx.get(changes, params={"since": "yesterday"}, headers=headers)
    assert code_of(malformed) == (422, "invalid_input")


def test_services_send_emails_in_batches_and_the_unsendable_are_named(api, profile, inbox) -> None:
    ada, bob = api.register(), api.register()
    notify = f"{profile.url('auth')}/api/auth/internal/notifications"  # never through nginx
    outbid = {"title": "Brass lamp", "current_price": "12.00", "currency": "EUR", "link": "x"}
    body = {
        "notifications": [
            {"user_id": ada.id, "template": "outbid", "data": outbid},
            {"user_id": NOBODY, "template": "outbid", "data": outbid},
            {"user_id": bob.id, "template": "no_such_template"},
            {"user_id": bob.id, "template": "outbid", "data": {"title": "Brass lamp"}},
            {"user_id": bob.id, "template": "outbid", "data": outbid | {"title": "Oak desk"}},
        ]
    }

    taken = httpx.post(notify, json=body, headers=service_headers(api))

    assert taken.status_code == 202, taken.text
    assert taken.json() == {"refused": [1, 2, 3]}  # no user, no template, a field missing
    assert "12.00 EUR" in inbox.wait_for(ada.email, "You have been outbid: Brass lamp")
    inbox.wait_for(bob.email, "You have been outbid: Oak desk")
    assert [m["Subject"] for m in inbox.messages(bob.email) if "outbid" in m["Subject"]] == [
        "You have been outbid: Oak desk"
    ]
    customer = {"Authorization": f"Bearer {api.token(ada)}"}
    as_customer = httpx.post(notify, json=body, headers=customer)
    assert code_of(as_customer) == (403, "forbidden")
    empty = httpx.post(notify, json={"notifications": []}, headers=service_headers(api))
    assert code_of(empty) == (422, "invalid_input")
