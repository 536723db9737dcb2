"""Users, passwords (bcrypt) and tokens (JWT HS256, 5 days), and the guard on every route.

Every route needs ``Authorization: Bearer <token>`` unless its handler is marked
``opt={"public": True}`` (``/login``, ``/health``) or it is the OpenAPI schema.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import bcrypt
import jwt
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from sqlalchemy import func, insert, select, update

from kernel.db import Database
from kernel.tables import users

TOKEN_LIFETIME_SECONDS = 5 * 24 * 3600
ALGORITHM = "HS256"
BCRYPT_MAX_BYTES = 72
PUBLIC_OPT = "public"
# Checked when the user does not exist, so "no such user" costs as much as a wrong password.
_DUMMY_HASH = bcrypt.hashpw(b"imageapi-no-such-user", bcrypt.gensalt()).decode()


class PasswordTooLong(ValueError):
    def __init__(self) -> None:
        super().__init__(f"passwords are limited to {BCRYPT_MAX_BYTES} bytes (bcrypt's limit)")


class UserExists(ValueError):
    pass


@dataclass(frozen=True)
class User:
    """The caller of a request (``request.user``), or a row of ``users``."""

    id: int
    username: str


def hash_password(password: str) -> str:
    raw = password.encode()
    if len(raw) > BCRYPT_MAX_BYTES:
        raise PasswordTooLong()
    if not raw:
        raise ValueError("the password may not be empty")
    return bcrypt.hashpw(raw, bcrypt.gensalt()).decode()


def verify_password(password: str, password_hash: str) -> bool:
    raw = password.encode()
    if len(raw) > BCRYPT_MAX_BYTES:
        return False
    try:
        return bcrypt.checkpw(raw, password_hash.encode())
    except ValueError:
        return False


def create_user(db: Database, username: str, password: str) -> User:
    username = username.strip()
    if not username:
        raise ValueError("the user name may not be empty")
    password_hash = hash_password(password)
    with db.write() as conn:
        exists = conn.execute(select(users.c.id).where(users.c.username == username)).first()
        if exists:
            raise UserExists(f"user {username!r} already exists")
        user_id = conn.execute(
            insert(users).values(
                username=username, password_hash=password_hash, created_at=time.time()
            )
        ).inserted_primary_key[0]
    return User(int(user_id), username)


def set_password(db: Database, username: str, password: str) -> None:
    password_hash = hash_password(password)
    with db.write() as conn:
        result = conn.execute(
            update(users).where(users.c.username == username).values(password_hash=password_hash)
        )
        if result.rowcount == 0:
            raise KeyError(f"no user {username!r}")


def list_users(db: Database) -> list[User]:
    with db.read() as conn:
        rows = conn.execute(select(users.c.id, users.c.username).order_by(users.c.id)).all()
    return [User(row.id, row.username) for row in rows]


def count_users(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(users)).scalar_one())


def authenticate(db: Database, username: str, password: str) -> User | None:
    """The user if the password matches; None alike for unknown users and wrong passwords."""
    with db.read() as conn:
        row = conn.execute(
            select(users.c.id, users.c.username, users.c.password_hash).where(
                users.c.username == username
            )
        ).first()
    if row is None:
        verify_password(password, _DUMMY_HASH)
        return None
    return User(row.id, row.username) if verify_password(password, row.password_hash) else None


def issue_token(secret: str, user_id: int, *, lifetime: int = TOKEN_LIFETIME_SECONDS) -> str:
    now = int(time.time())
    claims = {"sub": str(user_id), "iat": now, "exp": now + lifetime}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_token(secret: str, token: str) -> int:
    """The user id in a valid token; raises ``jwt.InvalidTokenError`` otherwise."""
    claims = jwt.decode(
        token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "iat"]}
    )
    return int(claims["sub"])


def user_by_id(db: Database, user_id: int) -> User | None:
    with db.read() as conn:
        row = conn.execute(
            select(users.c.id, users.c.username).where(users.c.id == user_id)
        ).first()
    return User(row.id, row.username) if row else None


class BearerTokenMiddleware(AbstractAuthenticationMiddleware):
    """Resolves ``Authorization: Bearer`` to a ``User``; anything else is a 401."""

    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthorizedException("missing bearer token")
        kernel = connection.app.state.kernel
        try:
            user_id = decode_token(kernel.config.secret_key, token.strip())
        except (jwt.InvalidTokenError, ValueError) as exc:
            raise NotAuthorizedException(f"invalid token: {exc}") from None
        user = user_by_id(kernel.db, user_id)
        if user is None:
            raise NotAuthorizedException("the token's user no longer exists")
        return AuthenticationResult(user=user, auth=token)
