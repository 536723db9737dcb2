"""Log-in, tokens and the guard on every route."""

from __future__ import annotations

import time

import jwt
import pytest
from click.testing import CliRunner

from kernel.auth import TOKEN_LIFETIME_SECONDS, PasswordTooLong, create_user, hash_password
from kernel.manager import builtin_plugin_names
from kernel.testing import harness

pytestmark = pytest.mark.db
SECRET = "test-secret-key-that-is-long-enough-for-hs256"


def login(h, username, password):
    return h.client.post("/login", json={"username": username, "password": password})


def test_login_returns_a_five_day_hs256_token(tmp_path):
    with harness(tmp_path) as h:
        response = login(h, "tester", "password-123")
        assert response.status_code == 200
        token = response.json()["token"]
        assert jwt.get_unverified_header(token)["alg"] == "HS256"
        claims = jwt.decode(token, SECRET, algorithms=["HS256"])
        assert claims["sub"] == "1"
        assert claims["exp"] - claims["iat"] == TOKEN_LIFETIME_SECONDS
        assert abs(claims["iat"] - time.time()) < 60
        listed = h.client.get("/photos", headers={"Authorization": f"Bearer {token}"})
        assert listed.status_code == 200


def test_unknown_user_and_wrong_password_answer_alike(tmp_path):
    with harness(tmp_path) as h:
        wrong = login(h, "tester", "nope")
        unknown = login(h, "nobody", "nope")
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json() == unknown.json()


def test_overlong_passwords(tmp_path):
    long_password = "é" * 40  # 80 bytes in UTF-8, 40 characters
    with pytest.raises(PasswordTooLong):
        hash_password(long_password)
    with harness(tmp_path) as h:
        response = login(h, "tester", long_password)
        assert response.status_code == 401
        with pytest.raises(PasswordTooLong):
            create_user(h.kernel.db, "long", long_password)


def test_cli_refuses_overlong_password(tmp_path, monkeypatch, library):
    from kernel.cli import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BASE_PATH", str(library))
    monkeypatch.setenv("IMAGEAPI_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    runner = CliRunner()
    result = runner.invoke(cli, ["user", "add", "ann", "--password-stdin"], input="x" * 73 + "\n")
    assert result.exit_code != 0 and "72 bytes" in result.output
    ok = runner.invoke(cli, ["user", "add", "ann", "--password-stdin"], input="s3cret-pw\n")
    assert ok.exit_code == 0, ok.output
    listed = runner.invoke(cli, ["user", "list"])
    assert "ann" in listed.output
    changed = runner.invoke(cli, ["user", "passwd", "ann", "--password-stdin"], input="new-pw\n")
    assert changed.exit_code == 0
    missing = runner.invoke(cli, ["user", "passwd", "bob", "--password-stdin"], input="pw\n")
    assert missing.exit_code != 0 and "no user" in missing.output


@pytest.mark.parametrize(
    "make_token",
    [
        lambda: "not-a-jwt",
        lambda: jwt.encode({"sub": "1", "iat": 0, "exp": 1}, SECRET, algorithm="HS256"),
        lambda: jwt.encode({"sub": "1", "iat": int(time.time())}, SECRET, algorithm="HS256"),
        lambda: jwt.encode({"iat": int(time.time()), "exp": 2**33}, SECRET, algorithm="HS256"),
        lambda: jwt.encode(
            {"sub": "1", "iat": int(time.time()), "exp": 2**33},
            "another-secret-key-that-is-also-long-enough",
        ),
        lambda: jwt.encode(
            {"sub": "1", "iat": int(time.time()), "exp": 2**33}, SECRET * 2, algorithm="HS512"
        ),
        lambda: (
            jwt.encode({"sub": "1", "iat": 1, "exp": 2**33}, None, algorithm="none")
            if "none" in jwt.algorithms.get_default_algorithms()
            else "a.b."
        ),
        lambda: jwt.encode({"sub": "99", "iat": int(time.time()), "exp": 2**33}, SECRET),
    ],
    ids=["garbage", "expired", "no-exp", "no-sub", "wrong-key", "hs512", "alg-none", "no-user"],
)
def test_bad_tokens_are_401(tmp_path, make_token):
    with harness(tmp_path) as h:
        response = h.client.get("/photos", headers={"Authorization": f"Bearer {make_token()}"})
        assert response.status_code == 401


def test_every_route_needs_a_token(tmp_path):
    """Walk every route of an app with all built-in plugins on: 401 without a token."""
    public = {"/login", "/health"}
    with harness(tmp_path, builtin_plugin_names()) as h:
        checked = 0
        for route in h.app.routes:
            if route.path.startswith("/schema") or route.path in public:
                continue
            for handler in route.route_handlers:
                if handler.opt.get("public"):
                    continue
                for method in sorted(getattr(handler, "http_methods", None) or {"GET"}):
                    if method in ("OPTIONS", "HEAD"):
                        continue
                    url = route.path.replace("{", "").replace("}", "")
                    url = "/".join("1" if ":int" in part else part for part in url.split("/"))
                    url = url.replace(":str", "").replace(":path", "")
                    response = h.client.request(method, url)
                    assert response.status_code == 401, (method, route.path)
                    checked += 1
        assert checked >= 5
        assert h.client.get("/health").status_code == 200
        assert h.client.get("/schema/openapi.json").status_code == 200
