"""Peak memory of a live server for a 256 MiB upload and a 256 MiB anonymous POST /login.

    PYTHONPATH=. python tests/plugins/uploads/measure_rss.py [CHECKOUT] [MiB]

CHECKOUT (default: this worktree) is the code the server runs, so the same numbers can
be taken before and after a change. Reads VmRSS / VmHWM of the server from /proc.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
from pathlib import Path

spec = importlib.util.spec_from_file_location(
    "upload_helpers", Path(__file__).with_name("conftest.py")
)
assert spec is not None and spec.loader is not None
helpers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(helpers)


def main() -> None:
    checkout = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else helpers.REPO
    size = (int(sys.argv[2]) if len(sys.argv) > 2 else 256) << 20
    for label, run in (
        ("POST /login, Content-Length", lambda s: s.post_raw("/login", size)),
        ("POST /login, chunked", lambda s: s.post_raw("/login", size, chunked=True)),
        ("POST /image, file", lambda s: s.upload(size).status_code),
        ("POST /image, text field", lambda s: s.upload(size, text_field=True).status_code),
    ):
        with tempfile.TemporaryDirectory() as home:  # a fresh server: VmHWM only grows
            server = helpers.LiveServer(Path(home), "", checkout=checkout).start()
            try:
                before = server.memory()
                started = time.monotonic()
                status = run(server)
                took = time.monotonic() - started
                after = server.memory()
                grew = (after["VmHWM"] - before["VmHWM"]) / 1024
                rss, peak = before["VmRSS"] / 1024, after["VmHWM"] / 1024
                print(
                    f"{label:30} {size >> 20} MiB -> {status}  in {took:5.1f} s; RSS"
                    f" {rss:6.1f} MiB before, peak {peak:6.1f} MiB after (peak +{grew:.1f} MiB)"
                )
            finally:
                server.stop()


if __name__ == "__main__":
    main()
