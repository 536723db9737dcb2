"""A process loads what its work needs: a command on an up-to-date database does not load
Alembic, nor does a serving process (it never migrates), and a serving process does not
load numpy (only face embeddings use it): 10 and 5 MB of private memory in each. A
command does not load the Prometheus client either, metrics on or off (it serves no
``/metrics``): 0.1 s of every command's start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kernel.testing import make_jpeg

REPO = Path(__file__).resolve().parents[2]

COMMAND = """
import sys
from kernel.auth import create_user
from kernel.cli import command_kernel

kernel = command_kernel(migrate=True)
if sys.argv[1:] == ["first"]:
    create_user(kernel.db, "alice", "password-123")
loaded = sorted(n for n in ("alembic", "prometheus_client") if n in sys.modules)
print("loaded:", ",".join(loaded) or "-")
"""

SERVING_PROCESS = """
import sys
from litestar.testing import TestClient
from kernel.cli import worker_app

with TestClient(app=worker_app()) as client:
    token = client.post("/login", json={"username": "alice", "password": "password-123"})
    headers = {"Authorization": "Bearer " + token.json()["token"]}
    assert client.get("/photos", headers=headers).status_code == 200
    assert client.get("/image", params={"path": "a.jpg"}, headers=headers).status_code == 200
loaded = sorted(n for n in ("alembic", "numpy") if n in sys.modules)
print("loaded:", ",".join(loaded) or "-")
"""


def run(code: str, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_commands_at_head_and_serving_processes_load_only_what_they_need(tmp_path):
    library = tmp_path / "library"
    make_jpeg(library / "a.jpg", size=(400, 300))
    env = {
        **os.environ,
        "BASE_PATH": str(library),
        "IMAGEAPI_DATA_DIR": str(tmp_path / "data"),
        "IMAGEAPI_CONFIG": str(REPO / "plugins.toml"),  # every shipped plugin, faces too
        "IMAGEAPI_SERVE_NO_SCAN": "1",
        "METRICS_BIND": "off",
        "PYTHONPATH": str(REPO),
    }
    # A fresh database: every branch migrates (what ``serve`` does before it starts the
    # serving processes); then a command on the same database, now at head.
    metrics_on = {k: v for k, v in env.items() if k != "METRICS_BIND"}  # the default
    assert run(COMMAND, metrics_on, "first") == "loaded: alembic"
    assert run(COMMAND, metrics_on) == "loaded: -"
    assert run(SERVING_PROCESS, env) == "loaded: -"
