"""Auth's rules: passwords, one-time codes, lockouts, TOTP steps. No I/O here."""

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

import pyotp

from flashbid_shared.errors import DomainError

PASSWORD_MIN, PASSWORD_MAX = 10, 128
CODE_TTL = timedelta(minutes=15)
CODE_ATTEMPTS = 5
RESEND_INTERVAL = timedelta(seconds=60)
RESET_TTL = timedelta(minutes=30)
FREE_FAILURES = 5
LOCK_BASE, LOCK_MAX = timedelta(seconds=15), timedelta(minutes=15)

# The most common passwords of at least PASSWORD_MIN characters (from public breach corpora).
COMMON_PASSWORDS = frozenset(
    """
    1234567890 12345678910 123456789a 1234567890a 0123456789 9876543210 1111111111 0000000000
    1q2w3e4r5t 1q2w3e4r5t6y qwertyuiop qwerty1234 qwerty12345 qwerty123456 asdfghjkl1
    password12 password123 password1234 passw0rd123 password01 password!! iloveyou12
    iloveyou123 princess12 football12 baseball12 superman12 starwars12 dragon1234 monkey1234
    sunshine12 letmein123 welcome123 welcome1234 administrator admin12345 admin123456
    changeme123 trustno1234 zaq12wsxcde abcdefghij abc1234567 aaaaaaaaaa qazwsxedcrfv
    1qaz2wsx3edc michael123 jennifer12 whatever12 computer12 internet12 flashbid123
    """.split()
)


class WeakPassword(DomainError):
    pass


class InvalidCredentials(DomainError):
    pass


class LoginThrottled(DomainError):
    pass


class AccountDisabled(DomainError):
    pass


class InvalidCode(DomainError):
    pass


class TooManyAttempts(DomainError):
    pass


class ResendTooSoon(DomainError):
    pass


class InvalidToken(DomainError):
    pass


class TokenReused(DomainError):
    pass


class EmailTaken(DomainError):
    pass


class UsernameTaken(DomainError):
    pass


class MfaState(DomainError):
    pass


class UserNotFound(DomainError):
    pass


class CannotChangeSelf(DomainError):
    pass


class NotAdmin(DomainError):
    pass


def check_password(password: str, *, username: str = "", email: str = "") -> None:
    if len(password) < PASSWORD_MIN:
        raise WeakPassword(f"Use at least {PASSWORD_MIN} characters.")
    if len(password) > PASSWORD_MAX:
        raise WeakPassword(f"Use at most {PASSWORD_MAX} characters.")
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS or len(set(password)) < 4:
        raise WeakPassword("This password is too common; choose another.")
    if (username and username.lower() in lowered) or (email and lowered == email.lower()):
        raise WeakPassword("The password must not contain your username or be your email.")


def new_code() -> str:
    """A 6-digit code from the OS's cryptographic source."""
    return f"{secrets.randbelow(1_000_000):06d}"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """How one-time codes and opaque tokens are stored: never in the clear."""
    return hashlib.sha256(secret.encode()).hexdigest()


def same_digest(secret: str, stored: str) -> bool:
    return hmac.compare_digest(digest(secret), stored)


def lock_duration(failures: int) -> timedelta | None:
    """After FREE_FAILURES wrong passwords in a row, each further one locks for twice as long."""
    if failures < FREE_FAILURES:
        return None
    return min(LOCK_BASE * 2 ** (failures - FREE_FAILURES), LOCK_MAX)


def retry_after(until: datetime, now: datetime) -> int:
    return max(1, int((until - now).total_seconds() + 0.999))


def totp_step(secret: str, code: str, now: datetime, last_step: int | None) -> int:
    """The time step `code` belongs to (now, or one step either side for clock drift);
    a step at or before `last_step` was already used, so the same code cannot work twice."""
    totp = pyotp.TOTP(secret)
    for drift in (0, -1, 1):
        at = now + timedelta(seconds=drift * totp.interval)
        if hmac.compare_digest(totp.at(at), code.strip()):
            step = totp.timecode(at)
            if last_step is not None and step <= last_step:
                raise InvalidCode("This code was already used; wait for the next one.")
            return step
    raise InvalidCode("The code is wrong or has expired.")
