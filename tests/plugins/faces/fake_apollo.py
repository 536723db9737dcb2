"""A fake Apollo: a real HTTP server on 127.0.0.1 speaking the faces protocol of
``plugins/faces/README.md``, with every failure the plugin must survive.

Faces come from the picture itself, so answers are deterministic: a nearly black picture
has none; a picture at least twice as wide as high has two (its left and right halves),
any other one (its middle half). A face's embedding is its mean colour minus 128 in the
first three of 512 values (zeros after), so the cosine of two faces is the cosine of
their colours — tests choose colours for the similarity they need (``embedding_of``).
``model_version`` is ``buffalo_l-`` plus the start of the SHA-256 of the bytes received,
so stored rows say which upload they came from.

``mode`` switches every later answer: ``ok``, ``slow`` (``delay`` seconds first),
``500``, ``400``, ``huge`` (1 GiB, streamed chunk by chunk without a length),
``huge_declared`` (a 1 GiB Content-Length), ``redirect``, ``malformed``,
``wrong_length``, ``nan``. Runnable as a process: ``python fake_apollo.py PORT``.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image, ImageStat

DIM = 512
GIB = 1 << 30


def embedding_of(rgb: tuple[float, float, float]) -> list[float]:
    vector = [0.0] * DIM
    vector[0:3] = [float(c) - 128.0 for c in rgb]
    return vector


def cosine(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    va, vb = np.array(a, float) - 128, np.array(b, float) - 128
    return float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb)))


def _mean(im: Image.Image) -> tuple[float, float, float]:
    """Mean colour, computed in C from the histogram (the same value as numpy's mean, at a
    sixteenth of its cost: the benchmark's fake must answer 160 calls a second)."""
    rgb = im if im.mode == "RGB" else im.convert("RGB")
    return tuple(float(c) for c in ImageStat.Stat(rgb).mean)


def faces_of(data: bytes) -> tuple[int, int, list[dict]]:
    with Image.open(io.BytesIO(data)) as im:
        im = im.convert("RGB")
        w, h = im.size
        if max(_mean(im)) < 24:
            return w, h, []
        boxes = (
            [(0, 0, w // 2, h), (w // 2, 0, w - w // 2, h)]
            if w >= 2 * h
            else [(w // 4, h // 4, w // 2, h // 2)]
        )
        faces = []
        for x, y, bw, bh in boxes:
            region = im.crop((x, y, x + bw, y + bh))
            faces.append(
                {
                    "bbox": [x, y, bw, bh],
                    "confidence": 0.98,
                    "embedding": embedding_of(_mean(region)),
                }
            )
        return w, h, faces


def multipart_file(content_type: str, body: bytes) -> bytes | None:
    """The bytes of the part named ``file``."""
    marker = "boundary="
    if marker not in content_type:
        return None
    boundary = content_type.split(marker, 1)[1].split(";")[0].strip().strip('"').encode()
    for part in body.split(b"--" + boundary):
        head, _, rest = part.partition(b"\r\n\r\n")
        if b'name="file"' in head:
            return rest[:-2] if rest.endswith(b"\r\n") else rest
    return None


class FakeApollo:
    def __init__(self, port: int = 0) -> None:
        self.mode = "ok"
        self.delay = 0.0
        self.calls: list[tuple[str, str]] = []  # (path, sha256 of the file) in arrival order
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body leave at once, like a real server

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                fake.handle(self)

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # every client connection is accepted, none refused

        self.server = Server(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeApollo:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def detect_calls(self) -> list[str]:
        with self.lock:
            return [sha for path, sha in self.calls if path.endswith("/detect")]

    # --- answers ---------------------------------------------------------------------------

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        """Answer ``delay`` seconds after the request arrived, the fake's own work
        included (done first), as an inference server that takes ``delay`` would."""
        arrived = time.monotonic()
        length = int(req.headers.get("content-length") or 0)
        body = req.rfile.read(length)
        data = multipart_file(req.headers.get("content-type", ""), body)
        sha = hashlib.sha256(data or b"").hexdigest()
        with self.lock:
            self.calls.append((req.path, sha))
        mode = self.mode
        detected = None
        if data is not None and req.path.endswith("/api/internal/faces/detect"):
            try:
                detected = faces_of(data)
            except Exception:  # not a picture: raised again below, where it always was
                detected = None
        if self.delay or mode == "slow":
            time.sleep(max(0.0, arrived + self.delay - time.monotonic()))
        if data is None:
            return self.reply(req, 400, {"detail": "multipart field 'file' is missing"})
        if mode == "500":
            return self.reply(req, 500, {"detail": "GPU worker crashed"})
        if mode == "400":
            return self.reply(req, 400, {"detail": "not an image"})
        if mode == "redirect":
            req.send_response(302)
            req.send_header("Location", "http://127.0.0.1:9/elsewhere")
            req.send_header("Content-Length", "0")
            req.end_headers()
            return None
        if mode == "malformed":
            return self.raw(req, 200, b'{"model_version": "buffalo_l", "faces": [')
        if mode in ("huge", "huge_declared"):
            return self.huge(req, declared=mode == "huge_declared")
        version = f"buffalo_l-{sha[:12]}"
        if req.path.endswith("/api/internal/faces/detect"):
            w, h, faces = detected or faces_of(data)
            if mode == "wrong_length":
                for face in faces:
                    face["embedding"] = face["embedding"][:128]
            if mode == "nan" and faces:
                raw = json.dumps({"model_version": version, "width": w, "height": h,
                                  "faces": faces}).replace("0.0", "NaN", 1)  # fmt: skip
                return self.raw(req, 200, raw.encode())
            if not faces:
                faces = []
            return self.reply(req, 200, {"model_version": version, "width": w, "height": h,
                                         "faces": faces})  # fmt: skip
        if req.path.endswith("/api/internal/faces/embed"):
            with Image.open(io.BytesIO(data)) as im:
                colour = _mean(im)
            if max(colour) < 24:
                return self.reply(req, 422, {"detail": "no face detected"})
            return self.reply(
                req, 200, {"model_version": version, "embedding": embedding_of(colour)}
            )
        return self.reply(req, 404, {"detail": "not found"})

    def reply(self, req: BaseHTTPRequestHandler, status: int, payload: object) -> None:
        self.raw(req, status, json.dumps(payload).encode())

    def raw(self, req: BaseHTTPRequestHandler, status: int, data: bytes) -> None:
        """Status line, headers and body in one write (one segment, one wake-up of the
        client for a small answer)."""
        head = (
            f"HTTP/1.1 {status} {req.responses.get(status, ('',))[0]}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        req.wfile.write(head.encode() + data)

    def huge(self, req: BaseHTTPRequestHandler, *, declared: bool) -> None:
        """1 GiB of JSON-looking bytes, 64 KiB at a time, until the client hangs up."""
        req.send_response(200)
        req.send_header("Content-Type", "application/json")
        if declared:
            req.send_header("Content-Length", str(GIB))
        else:
            req.send_header("Transfer-Encoding", "chunked")
        req.end_headers()
        chunk = b" " * 65536
        sent = 0
        try:
            while sent < GIB:
                if declared:
                    req.wfile.write(chunk)
                else:
                    req.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            if not declared:
                req.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client stopped reading: what the test wants
        req.close_connection = True


if __name__ == "__main__":  # a fake of its own process (the benchmark uses it)
    sys.setswitchinterval(0.0005)  # a thread waking from its delay gets the GIL at once
    fake = FakeApollo(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    if len(sys.argv) > 2:
        fake.delay = float(sys.argv[2])
    print(fake.url, flush=True)
    fake.server.serve_forever()
