"""Mixed load: listings, thumbnails, metadata, tag and favourite writes at once, 64
connections for 60 s, against a real server; the same load against an older revision
of imageapi in the same run.

    .venv/bin/python tests/benchmarks/mixed.py [--photos 400] [--seconds 60]
        [--baseline REV] [--keep DIR]

Needs ``wrk`` (the distribution's package; benchmarks only). Builds a library of
``--photos`` JPEGs with camera EXIF in 20 folders, scans it with the shipped plugins.toml
(thumbnails rendered, EXIF read), adds a user, then starts ``imageapi serve --no-scan``
(one serving process per CPU where the revision has ``--workers``) and runs one wrk per
route at the same time, the connections split as a photo app's traffic is:

* listings, 12 connections: ``GET /photos`` of a folder, pages of 100, recursive, date
  sort or camera filter in turn;
* thumbnails, 28: ``GET /image?size=thumb`` over every photo;
* metadata, 12: ``GET /image/metadata``;
* tag writes, 6: ``POST /image/tags`` (a tag name among 50);
* favourite writes, 6: ``POST`` and ``DELETE /favorites`` in turn.

Prints, per route and server: requests/s, p50 and p99 latency, errors (non-2xx and
socket errors), and the whole server's requests/s and CPU seconds per request; then the
ratio of this tree to the baseline revision (default: ``371a8f8``, main before the
serving work) against the goals: 0 errors, >= 3x the throughput, p99 <= 150 ms on every
route. The baseline runs from a detached git worktree under the work folder, with its
own data folder and the plugins.toml it shipped. Each tree scans once (kept under
``--keep``) and every run serves a fresh copy of that scanned data, so both trees start
from the same database however many runs came before.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from serving import cpu_seconds, free_port, start, stop, wait_up

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from kernel.media.samples import make_jpeg  # noqa: E402

CAMERAS = [("Canon", "EOS 80D"), ("NIKON CORPORATION", "NIKON D750"), ("Apple", "iPhone 13")]
ROUTES = {  # name: connections
    "listings": 12,
    "thumbnails": 28,
    "metadata": 12,
    "tag writes": 6,
    "favourite writes": 6,
}
GOAL_RATIO, GOAL_P99_MS = 3.0, 150.0


def build_library(library: Path, photos: int) -> list[str]:
    rng = random.Random(7)
    paths = []
    start_day = datetime(2015, 1, 1, 9)
    for n in range(photos):
        rel = f"trip{n % 20:02d}/img_{n:05d}.jpg"
        make, model = CAMERAS[n % len(CAMERAS)]
        make_jpeg(
            library / rel,
            size=(1600, 1200),
            color=(rng.randrange(256), rng.randrange(256), rng.randrange(256)),
            taken=start_day + timedelta(hours=7 * n),
            make=make,
            model=model,
            caption=rel,
            quality=85,
        )
        paths.append(rel)
    return paths


def lua_list(values: list[str]) -> str:
    return "{" + ",".join(json.dumps(v) for v in values) + "}"


def scripts(work: Path, paths: list[str], token: str) -> dict[str, Path]:
    """One wrk Lua script per route: each request picks the next item of its list."""
    auth = f'wrk.headers["Authorization"] = "Bearer {token}"\n'
    json_type = 'wrk.headers["Content-Type"] = "application/json"\n'
    folders = sorted({p.split("/")[0] for p in paths})
    listings = []
    for n, folder in enumerate(folders * 3):
        extra = "&sort=DateTakenDesc" if n % 2 else "&camera_make=Canon"
        listings.append(f"/photos?path={folder}&recursive=true&limit=100&offset=0{extra}")
        listings.append(f"/photos?limit=100&offset={(n * 100) % len(paths)}&recursive=true")
    bodies = {
        "listings": ("GET", listings, None),
        "thumbnails": ("GET", [f"/image?path={p}&size=thumb" for p in paths], None),
        "metadata": ("GET", [f"/image/metadata?path={p}" for p in paths], None),
        "tag writes": (
            "POST",
            ["/image/tags"] * len(paths),
            [json.dumps({"path": p, "tag_name": f"tag{n % 50}"}) for n, p in enumerate(paths)],
        ),
        "favourite writes": (
            "POST",
            ["/favorites"] * len(paths),
            [json.dumps({"path": p}) for p in paths],
        ),
    }
    out = {}
    for name, (method, urls, payloads) in bodies.items():
        toggle = name == "favourite writes"  # add, then take away, so it stays a write
        text = auth + (json_type if payloads else "") + f"local urls = {lua_list(urls)}\n"
        text += f"local bodies = {lua_list(payloads) if payloads else '{}'}\n"
        text += "local i = 0\nrequest = function()\n  i = i + 1\n"
        text += "  local k = (i % #urls) + 1\n"
        if toggle:
            text += '  local method = (math.floor(i / #urls) % 2 == 0) and "POST" or "DELETE"\n'
        else:
            text += f'  local method = "{method}"\n'
        text += "  return wrk.format(method, urls[k], nil, bodies[k])\nend\n"
        path = work / f"{name.replace(' ', '_')}.lua"
        path.write_text(text)
        out[name] = path
    return out


def parse_wrk(text: str) -> dict[str, float]:
    def ms(value: str) -> float:
        number, unit = re.match(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    p50 = re.search(r"^\s+50%\s+(\S+)", text, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M)
    total = re.search(r"(\d+) requests in", text)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    errors = int(non2xx.group(1)) if non2xx else 0
    errors += sum(int(g) for g in socket.groups()) if socket else 0
    return {
        "requests": float(total.group(1)) if total else 0.0,
        "rate": float(rate.group(1)) if rate else 0.0,
        "p50": ms(p50.group(1)) if p50 else float("nan"),
        "p99": ms(p99.group(1)) if p99 else float("nan"),
        "errors": float(errors),
    }


def run_server(
    tree: Path, library: Path, data: Path, seconds: int, log: Path
) -> dict[str, dict[str, float]]:
    """Scan with ``tree``'s code and plugins.toml (once, kept beside ``data``), serve a
    fresh copy of that scanned data, load, stop: per-route figures."""
    port = free_port()
    env = {
        **os.environ,
        "BASE_PATH": str(library),
        "IMAGEAPI_DATA_DIR": str(data),
        "IMAGEAPI_CONFIG": str(tree / "plugins.toml"),
        "BIND_URL": f"127.0.0.1:{port}",
        "LOG_LEVEL": "warning",
        "METRICS_BIND": "off",
        "PYTHONPATH": str(tree),
    }
    cli = [sys.executable, "-c", "from kernel.cli import main; main()"]
    scanned = data.with_name(data.name + "-scanned")
    if not (scanned / "scanned").exists():
        into = {**env, "IMAGEAPI_DATA_DIR": str(scanned)}
        subprocess.run([*cli, "scan"], env=into, cwd=data.parent, check=True, capture_output=True)
        subprocess.run(
            [*cli, "user", "add", "bench", "--password-stdin"],
            env=into, cwd=data.parent, input=b"bench-password\n", capture_output=True, check=True,
        )  # fmt: skip
        (scanned / "scanned").touch()
    # Every run starts from the database as scanned: the writes of an earlier run (--keep)
    # would otherwise make one tree's listings longer than the other's.
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(scanned, data)
    help_text = subprocess.run(
        [*cli, "serve", "--help"], env=env, cwd=data.parent, capture_output=True, text=True
    )
    workers = ["--workers", str(os.cpu_count() or 2)] if "--workers" in help_text.stdout else []
    server = start([*cli, "serve", "--no-scan", *workers], env, log, data.parent)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_up(f"{url}/health")
        login = {"username": "bench", "password": "bench-password"}
        token = httpx.post(f"{url}/login", json=login).json()["token"]
        paths = json.loads((library.parent / "paths.json").read_text())
        lua = scripts(data.parent, paths, token)
        for rel in paths:  # every thumbnail made before the clock starts
            httpx.get(f"{url}/image", params={"path": rel, "size": "thumb"},
                      headers={"Authorization": f"Bearer {token}"}, timeout=60)  # fmt: skip
        cpu_before = cpu_seconds(server.pid)
        runs = {}
        for name, connections in ROUTES.items():
            args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s"]
            runs[name] = subprocess.Popen([*args, str(lua[name]), url], stdout=subprocess.PIPE,
                                          text=True)  # fmt: skip
        results = {name: parse_wrk(run.communicate()[0]) for name, run in runs.items()}
        cpu_used = cpu_seconds(server.pid) - cpu_before
    finally:
        stop(server)
    total = sum(r["requests"] for r in results.values())
    results["all routes"] = {
        "requests": total,
        "rate": sum(r["rate"] for r in results.values()),
        "p50": float("nan"),
        "p99": max(r["p99"] for r in results.values()),
        "errors": sum(r["errors"] for r in results.values()),
        "cpu_ms": cpu_used * 1000 / total if total else float("nan"),
    }
    return results


def baseline_tree(work: Path, rev: str) -> Path:
    tree = work / f"tree-{rev}"
    if not tree.exists():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), rev],
                       check=True, capture_output=True)  # fmt: skip
    return tree


def show(name: str, results: dict[str, dict[str, float]]) -> None:
    print(f"\n{name}")
    for route, r in results.items():
        cpu = f"  CPU {r['cpu_ms']:.2f} ms/request" if "cpu_ms" in r else ""
        print(
            f"  {route:<17} {r['rate']:8.1f} req/s  p50 {r['p50']:7.1f} ms"
            f"  p99 {r['p99']:7.1f} ms  errors {int(r['errors'])}{cpu}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=400)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--baseline", default="371a8f8")
    parser.add_argument("--keep", type=Path)
    opts = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    work = opts.keep or Path(tempfile.mkdtemp(prefix="imageapi-mixed-"))
    work.mkdir(parents=True, exist_ok=True)
    library = work / "library"
    if not (work / "paths.json").exists():
        paths = build_library(library, opts.photos)
        (work / "paths.json").write_text(json.dumps(paths))
    figures = {}
    try:
        for label, tree, folder in (  # data per revision: an older one cannot read a newer's
            (f"baseline {opts.baseline}", baseline_tree(work, opts.baseline), opts.baseline),
            ("this tree", REPO, "this"),
        ):
            data = work / f"data-{folder}"
            figures[label] = run_server(tree, library, data, opts.seconds, work / "server.log")
            show(label, figures[label])
    finally:
        if not opts.keep:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force",
                            str(work / f"tree-{opts.baseline}")], capture_output=True)  # fmt: skip
            shutil.rmtree(work, ignore_errors=True)
    base, new = figures[f"baseline {opts.baseline}"], figures["this tree"]
    ratio = new["all routes"]["rate"] / base["all routes"]["rate"]
    worst = max(r["p99"] for route, r in new.items() if route != "all routes")
    errors = int(new["all routes"]["errors"])
    verdict = "ok" if ratio >= GOAL_RATIO else "MISSED"
    print(
        f"\nthroughput x{ratio:.2f} (goal >= {GOAL_RATIO:.0f}: {verdict})"
        f"; worst route p99 {worst:.1f} ms (goal <= {GOAL_P99_MS:.0f}:"
        f" {'ok' if worst <= GOAL_P99_MS else 'MISSED'}); errors {errors}"
        f" (goal 0: {'ok' if errors == 0 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
