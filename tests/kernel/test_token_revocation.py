"""A password change or a deleted user ends every token issued before it."""

from __future__ import annotations

import jwt
import pytest
from click.testing import CliRunner

from kernel.auth import set_password
from kernel.testing import harness

pytestmark = pytest.mark.db


def login(h, username: str, password: str) -> str:
    response = h.client.post("/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return response.json()["token"]


def photos(h, token: str):
    return h.client.get("/photos", headers={"Authorization": f"Bearer {token}"})


def test_a_password_change_revokes_older_tokens(tmp_path):
    with harness(tmp_path) as h:
        before = login(h, "tester", "password-123")
        assert photos(h, before).status_code == 200
        set_password(h.kernel.db, "tester", "another-password")
        refused = photos(h, before)
        assert refused.status_code == 401
        assert "revoked" in refused.json()["detail"]
        after = login(h, "tester", "another-password")
        assert photos(h, after).status_code == 200
        # The old token stays refused, however many times it is tried.
        assert photos(h, before).status_code == 401


def test_tokens_from_before_versions_count_as_version_zero(tmp_path):
    with harness(tmp_path) as h:
        secret = h.kernel.config.secret_key
        legacy = jwt.encode({"sub": "1", "iat": 1, "exp": 2**33}, secret, algorithm="HS256")
        assert photos(h, legacy).status_code == 200
        set_password(h.kernel.db, "tester", "another-password")
        assert photos(h, legacy).status_code == 401
        forged = jwt.encode(
            {"sub": "1", "iat": 1, "exp": 2**33, "ver": "1"}, secret, algorithm="HS256"
        )
        assert photos(h, forged).status_code == 401


def _cli(tmp_path, monkeypatch, h):
    from kernel.cli import cli

    config = h.kernel.config
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "DATABASE_URL": config.database_url,
        "BASE_PATH": str(config.base_path),
        "IMAGEAPI_DATA_DIR": str(config.data_dir),
        "SECRET_KEY": config.secret_key,
        "IMAGEAPI_CONFIG": str(config.config_file),
    }.items():
        monkeypatch.setenv(name, value)
    return lambda *args, **kw: CliRunner().invoke(cli, list(args), **kw)


def test_cli_passwd_revokes_and_delete_removes_the_user(tmp_path, monkeypatch):
    with harness(tmp_path) as h:
        run = _cli(tmp_path, monkeypatch, h)
        added = run("user", "add", "ann", "--password-stdin", input="ann-password\n")
        assert added.exit_code == 0, added.output
        token = login(h, "ann", "ann-password")
        assert photos(h, token).status_code == 200

        changed = run("user", "passwd", "ann", "--password-stdin", input="new-password\n")
        assert changed.exit_code == 0 and "no longer work" in changed.output
        assert photos(h, token).status_code == 401
        token = login(h, "ann", "new-password")
        assert photos(h, token).status_code == 200

        refused = run("user", "delete", "ann", input="n\n")
        assert refused.exit_code != 0
        assert photos(h, token).status_code == 200  # not confirmed: nothing happened
        deleted = run("user", "delete", "ann", "--yes")
        assert deleted.exit_code == 0, deleted.output
        gone = photos(h, token)
        assert gone.status_code == 401 and "no longer exists" in gone.json()["detail"]
        assert (
            h.client.post(
                "/login", json={"username": "ann", "password": "new-password"}
            ).status_code
            == 401
        )
        missing = run("user", "delete", "ann", "--yes")
        assert missing.exit_code != 0 and "no user" in missing.output
        listed = run("user", "list")
        assert "ann" not in listed.output and "tester" in listed.output
