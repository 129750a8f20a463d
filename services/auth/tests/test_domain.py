from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from flashbid_auth.domain import (
    InvalidCode,
    WeakPassword,
    check_password,
    digest,
    lock_duration,
    new_code,
    retry_after,
    same_digest,
    totp_step,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short1!", "at least 10"),
        ("x" * 129, "at most 128"),
        ("password123", "too common"),
        ("QwertyUiop", "too common"),
        ("abababababab", "too common"),
        ("my-name-alice-is-long", "username"),
    ],
)
def test_weak_passwords_are_refused_with_the_reason(password: str, reason: str) -> None:
    with pytest.raises(WeakPassword, match=reason):
        check_password(password, username="alice", email="alice@example.com")


def test_a_long_uncommon_password_is_accepted() -> None:
    check_password("correct horse battery staple", username="alice", email="a@example.com")


def test_codes_are_six_digits_and_stored_only_as_digests() -> None:
    codes = {new_code() for _ in range(200)}
    assert all(len(code) == 6 and code.isdigit() for code in codes)
    assert len(codes) > 150
    code = new_code()
    assert code not in digest(code)
    assert same_digest(code, digest(code))
    assert not same_digest("000000" if code != "000000" else "111111", digest(code))


def test_five_failures_are_free_then_each_one_locks_twice_as_long_up_to_a_cap() -> None:
    assert [lock_duration(n) for n in range(5)] == [None] * 5
    assert lock_duration(5) == timedelta(seconds=15)
    assert lock_duration(6) == timedelta(seconds=30)
    assert lock_duration(7) == timedelta(seconds=60)
    assert lock_duration(40) == timedelta(minutes=15)


def test_retry_after_rounds_up_and_is_at_least_one_second() -> None:
    assert retry_after(NOW + timedelta(seconds=14.2), NOW) == 15
    assert retry_after(NOW - timedelta(seconds=3), NOW) == 1


def test_a_totp_code_works_once_and_tolerates_one_step_of_drift() -> None:
    secret = pyotp.random_base32()
    totp = pyotp.TOTP(secret)
    step = totp_step(secret, totp.at(NOW), NOW, None)
    assert step == totp.timecode(NOW)
    with pytest.raises(InvalidCode, match="already used"):
        totp_step(secret, totp.at(NOW), NOW, step)
    previous = NOW - timedelta(seconds=30)
    assert totp_step(secret, totp.at(previous), NOW, None) == step - 1
    later = NOW + timedelta(seconds=30)
    assert totp_step(secret, totp.at(later), NOW, step) == step + 1
    with pytest.raises(InvalidCode, match="wrong or has expired"):
        totp_step(secret, totp.at(NOW - timedelta(minutes=5)), NOW, None)
