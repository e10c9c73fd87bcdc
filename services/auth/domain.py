"""Auth's logic: accounts, credentials and access tokens, free of Flask's request object."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from services.auth.attempts import HashingSlots
from services.auth.models import MEMBERSHIP_ADMIN, MEMBERSHIP_STANDARD, User, db
from services.common.errors import Conflict, Unauthorized
from services.common.tokens import TokenSigner

WRONG_CREDENTIALS = "the email or password is not correct"


class PasswordHasher:
    """Hashes and checks passwords with one werkzeug method (scrypt unless configured),
    never more at once than `slots` allows (each scrypt run holds ~32 MiB)."""

    def __init__(self, method: str, slots: HashingSlots | None = None) -> None:
        self.method = method
        self._slots = slots
        # Hashing once up front fails a misconfigured method at start, not on first signup,
        # and gives a hash to check against for unknown emails so they take as long.
        self._decoy = generate_password_hash("decoy password", method=method)

    def _slot(self) -> AbstractContextManager[None]:
        return self._slots.slot() if self._slots is not None else nullcontext()

    def hash(self, password: str) -> str:
        """A salted hash of `password`."""
        with self._slot():
            return generate_password_hash(password, method=self.method)

    def matches(self, password_hash: str | None, password: str) -> bool:
        """Whether `password` matches; as slow for a missing account as for a real one."""
        with self._slot():
            if password_hash is None:
                check_password_hash(self._decoy, password)
                return False
            return check_password_hash(password_hash, password)


def register_user(email: str, password: str, name: str, *, hasher: PasswordHasher) -> User:
    """Create a shopper's account; `Conflict` if the (normalised) email is already registered.

    Registering never makes an admin, whatever the email: admins are made by `make_admin`,
    which only an operator's command calls.
    """
    if db.session.scalar(select(User.id).where(User.email == email)) is not None:
        raise email_taken(email)
    user = User(email=email, name=name, password_hash=hasher.hash(password),
                membership=MEMBERSHIP_STANDARD)
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError as exc:  # the same email registered at the same moment
        db.session.rollback()
        raise email_taken(email) from exc
    return user


def make_admin(email: str, name: str, password: str | None, *, hasher: PasswordHasher
               ) -> tuple[User, bool]:
    """Create an admin account, or promote an existing one (its password reset when given).

    Returns the user and whether it was created. A new account needs a password.
    """
    user = db.session.scalar(select(User).where(User.email == email))
    created = user is None
    if user is None:
        if not password:
            raise ValueError(f"{email} has no account yet: give it a password")
        user = User(email=email, name=name, password_hash=hasher.hash(password),
                    membership=MEMBERSHIP_ADMIN)
        db.session.add(user)
    else:
        user.membership = MEMBERSHIP_ADMIN
        if password:
            user.password_hash = hasher.hash(password)
    db.session.commit()
    return user, created


def revoke_admin(email: str) -> User | None:
    """Make an admin an ordinary shopper again; None when there is no such account."""
    user = db.session.scalar(select(User).where(User.email == email))
    if user is not None:
        user.membership = MEMBERSHIP_STANDARD
        db.session.commit()
    return user


def admins() -> list[User]:
    """Every admin account, oldest first."""
    return list(db.session.scalars(
        select(User).where(User.membership == MEMBERSHIP_ADMIN).order_by(User.id)))


def email_taken(email: str) -> Conflict:
    """The error for a second account with the same email."""
    return Conflict(
        "an account with this email already exists; log in instead",
        code="email_taken",
        details={"email": email},
    )


def authenticate(email: str, password: str, *, hasher: PasswordHasher) -> User:
    """The user with these credentials; the same `Unauthorized` whichever part is wrong."""
    user = db.session.scalar(select(User).where(User.email == email))
    if not hasher.matches(user.password_hash if user else None, password) or user is None:
        raise Unauthorized(WRONG_CREDENTIALS, code="invalid_credentials")
    return user


def issue_access_token(signer: TokenSigner, user: User) -> dict[str, object]:
    """The login answer: a signed token, its type and lifetime, and the user."""
    token, ttl = signer.issue(user.id, user.email, user.name, user.membership)
    return {"access_token": token, "token_type": "Bearer", "expires_in": ttl, "user": user}


def user_by_id(user_id: int) -> User:
    """The account a verified token speaks for; `Unauthorized` if it no longer exists."""
    user = db.session.get(User, user_id)
    if user is None:
        raise Unauthorized("the account of this access token does not exist", code="unknown_user")
    return user
