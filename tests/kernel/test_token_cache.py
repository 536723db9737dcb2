"""The bearer token's user is looked up once, not on every request, and never on the
event loop; after any commit (a password change in another process, another client's tag)
the kept user is checked by its row before it is given, without a worker-thread lookup."""

from __future__ import annotations

import threading

from sqlalchemy import event

from kernel.auth import create_user, set_password
from kernel.testing import harness


def _user_lookups(kernel) -> list[str]:
    """The thread name of every statement that reads the users table."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        if "FROM users" in statement:
            seen.append(threading.current_thread().name)

    event.listen(kernel.db.engine, "before_cursor_execute", record)
    return seen


def test_the_user_of_a_token_is_looked_up_once_and_rechecked_by_its_row(tmp_path):
    with harness(tmp_path) as h:
        assert h.get("/libraries").status_code == 200  # warm: the token is now known
        lookups = _user_lookups(h.kernel)
        for _ in range(20):
            assert h.get("/libraries").status_code == 200
        assert lookups == []

        # Commits that leave this user as it was (another user, anything else) do not send
        # the request back to a worker thread for the lookup: the row is checked in place.
        for n in range(3):
            create_user(h.kernel.db, f"someone-else-{n}", "password-456")
            lookups.clear()  # create_user's own statements
            assert h.get("/libraries").status_code == 200
            assert lookups == []

        # A commit that changes this user makes the token fail at once.
        set_password(h.kernel.db, "tester", "password-789")
        lookups.clear()
        revoked = h.get("/libraries")
        assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]
        assert len(lookups) == 1  # dropped from the cache, then refused by the full check


def test_the_lookup_runs_in_a_worker_thread_not_on_the_event_loop(tmp_path):
    with harness(tmp_path) as h:
        lookups = _user_lookups(h.kernel)
        loop_thread = h.run(_current_thread_name)
        assert h.get("/libraries").status_code == 200
        assert lookups and loop_thread not in lookups


async def _current_thread_name() -> str:
    return threading.current_thread().name


def test_a_forged_or_expired_token_is_never_kept(tmp_path):
    with harness(tmp_path) as h:
        bad = {"Authorization": "Bearer not-a-token"}
        for _ in range(3):
            assert h.client.get("/libraries", headers=bad).status_code == 401
        assert h.kernel.tokens.get("not-a-token", h.kernel.tokens.version()) is None


def test_importing_the_cli_hashes_no_password(tmp_path):
    """The "no such user" hash is made on first use: at import it cost every command."""
    import subprocess
    import sys

    script = (
        "import bcrypt\n"
        "calls = []\n"
        "real = bcrypt.hashpw\n"
        "bcrypt.hashpw = lambda *args: calls.append(1) or real(*args)\n"
        "import kernel.cli\n"
        "print(len(calls))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"
