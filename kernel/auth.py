"""Users, passwords (bcrypt) and tokens (JWT HS256, 5 days), and the guard on every route.

Every route needs ``Authorization: Bearer <token>`` unless its handler is marked
``opt={"public": True}`` (``/login``, ``/health``) or it is the OpenAPI schema.
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import astuple, dataclass

import bcrypt
import jwt
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from sqlalchemy import delete, func, insert, select, update

from kernel.db import Database
from kernel.tables import users
from kernel.versioned import VersionedCache

TOKEN_LIFETIME_SECONDS = 5 * 24 * 3600
ALGORITHM = "HS256"
BCRYPT_MAX_BYTES = 72
PUBLIC_OPT = "public"
KEPT_TOKENS = 1024


@functools.cache
def _dummy_hash() -> str:
    """Checked when the user does not exist, so "no such user" costs as much as a wrong
    password. Made on first use: at import it cost every CLI command 0.2 s."""
    return bcrypt.hashpw(b"imageapi-no-such-user", bcrypt.gensalt()).decode()


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
    token_version: int = 0


#: a ``User``'s fields, in its order: ``User(*row)``
USER_COLUMNS = (users.c.id, users.c.username, users.c.token_version)


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
    """A new password; every token issued before it stops working (its version moves on)."""
    password_hash = hash_password(password)
    with db.write() as conn:
        result = conn.execute(
            update(users)
            .where(users.c.username == username)
            .values(password_hash=password_hash, token_version=users.c.token_version + 1)
        )
        if result.rowcount == 0:
            raise KeyError(f"no user {username!r}")


def delete_user(db: Database, username: str) -> None:
    """Remove a user; their tokens stop working and their favourites go with them."""
    with db.write() as conn:
        result = conn.execute(delete(users).where(users.c.username == username))
        if result.rowcount == 0:
            raise KeyError(f"no user {username!r}")


def list_users(db: Database) -> list[User]:
    with db.read() as conn:
        rows = conn.execute(select(*USER_COLUMNS).order_by(users.c.id)).all()
    return [User(*row) for row in rows]


def count_users(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(users)).scalar_one())


def authenticate(db: Database, username: str, password: str) -> User | None:
    """The user if the password matches; None alike for unknown users and wrong passwords."""
    with db.read() as conn:
        query = select(*USER_COLUMNS, users.c.password_hash).where(users.c.username == username)
        row = conn.execute(query).first()
    if row is None:
        verify_password(password, _dummy_hash())
        return None
    if not verify_password(password, row.password_hash):
        return None
    return User(row.id, row.username, row.token_version)


def issue_token(
    secret: str, user_id: int, *, version: int = 0, lifetime: int = TOKEN_LIFETIME_SECONDS
) -> str:
    """A JWT for the user; ``version`` is the user's ``token_version`` at issue."""
    now = int(time.time())
    claims = {"sub": str(user_id), "iat": now, "exp": now + lifetime, "ver": version}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_claims(secret: str, token: str) -> tuple[int, int]:
    """(user id, token version) of a valid token; raises ``jwt.InvalidTokenError``
    otherwise. Tokens issued before versions existed are version 0."""
    claims = jwt.decode(
        token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "iat"]}
    )
    version = claims.get("ver", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise jwt.InvalidTokenError("the ver claim is not an integer")
    return int(claims["sub"]), version


def user_by_id(db: Database, user_id: int) -> User | None:
    with db.read() as conn:
        row = conn.execute(select(*USER_COLUMNS).where(users.c.id == user_id)).first()
    return User(*row) if row else None


def user_for_token(db: Database, secret: str, token: str) -> User:
    """The live user a bearer token stands for: signature, expiry, the user still there and
    the token issued since their last password change. Raises ``NotAuthorizedException``."""
    try:
        user_id, version = decode_claims(secret, token)
    except (jwt.InvalidTokenError, ValueError) as exc:
        raise NotAuthorizedException(f"invalid token: {exc}") from None
    user = user_by_id(db, user_id)
    if user is None:
        raise NotAuthorizedException("the token's user no longer exists")
    if version != user.token_version:
        raise NotAuthorizedException("the token was revoked (the password changed); log in again")
    return user


class TokenCache:
    """Bearer tokens already checked, with their user: every request carries a token, and
    its user was a query in a worker thread on every request.

    On SQLite a hit costs a read of the change counter (``Database.local_version``, no
    I/O), taken before the lookup it guards. After any commit by any process the kept
    user is checked again before it is given: its row read by primary key on the spot
    (``Database.row_now``), not the worker-thread lookup, so the tag and favourite
    writes of other clients do not send every request back to a worker; a password
    change (the token version) or a deleted user fails that check at once. On
    PostgreSQL and in-memory databases nothing is kept. An expired token is never
    answered from here.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._kept: VersionedCache[tuple[float, User]] = VersionedCache(KEPT_TOKENS)

    def version(self) -> int | None:
        return self.db.local_version()

    def get(self, token: str, version: int | None) -> User | None:
        kept = self._kept.get(token, version, self._unchanged)
        return kept[1] if kept is not None and kept[0] > time.time() else None

    def _unchanged(self, kept: tuple[float, User]) -> bool:
        user = kept[1]
        return self.db.row_now(USER_COLUMNS, user.id) == astuple(user)

    def keep(self, token: str, version: int | None, user: User) -> None:
        if version is not None:
            expires = jwt.decode(token, options={"verify_signature": False}).get("exp", 0)
            self._kept.put(token, version, (float(expires), user))


class BearerTokenMiddleware(AbstractAuthenticationMiddleware):
    """Resolves ``Authorization: Bearer`` to a ``User``; anything else is a 401. The user
    comes from the kernel's ``TokenCache``, else from a lookup in a worker thread."""

    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise NotAuthorizedException("missing bearer token")
        kernel = connection.app.state.kernel
        cache: TokenCache = kernel.tokens
        version = cache.version()
        user = cache.get(token, version)
        if user is None:
            secret = kernel.config.secret_key
            user = await asyncio.to_thread(user_for_token, kernel.db, secret, token)
            cache.keep(token, version, user)
        return AuthenticationResult(user=user, auth=token)
