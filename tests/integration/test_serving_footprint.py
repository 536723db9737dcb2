"""A serving process loads what serving needs: not Alembic (it never migrates) and not
numpy (only face embeddings use it), 10 and 5 MB of private memory in each process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kernel.testing import make_jpeg

REPO = Path(__file__).resolve().parents[2]

PREPARE = """
from kernel.auth import create_user
from kernel.cli import command_kernel

create_user(command_kernel(migrate=True).db, "alice", "password-123")
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


def run(code: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_a_serving_process_loads_neither_alembic_nor_numpy(tmp_path):
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
    run(PREPARE, env)  # what ``serve`` does before it starts the serving processes
    assert run(SERVING_PROCESS, env).strip().splitlines()[-1] == "loaded: -"
