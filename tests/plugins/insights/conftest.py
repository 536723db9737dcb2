"""Fake backends (real HTTP on 127.0.0.1) and an app with the insights plugin, plus
in-test plugins that stand in for exif, tags, faces and a thumbnailer through hooks."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from kernel import RenderResult, Tool, hookimpl
from kernel.testing import make_jpeg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from insights_fakes import FakeNominatim, FakeOllama, FakeOpenRouter

KEY = "sk-or-v1-0123456789abcdef-secret-test-key"
MODEL = "llava:7b"


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    with FakeOllama() as server:
        yield server


@pytest.fixture
def ollama2() -> Iterator[FakeOllama]:
    with FakeOllama() as server:
        yield server


@pytest.fixture
def openrouter() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter() as server:
        yield server


@pytest.fixture
def nominatim() -> Iterator[FakeNominatim]:
    with FakeNominatim() as server:
        yield server


@pytest.fixture
def refused_url() -> str:
    """A URL nothing listens on (connection refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def env_for(
    ollama: Any = None,
    *,
    fallback: Any = None,
    openrouter: Any = None,
    nominatim: Any = None,
    **extra: str,
) -> dict[str, str]:
    env: dict[str, str] = {}
    if ollama is not None:
        env["OLLAMA_PRIMARY_URL"] = ollama if isinstance(ollama, str) else ollama.url
        env["OLLAMA_PRIMARY_MODEL"] = MODEL
    if fallback is not None:
        env["OLLAMA_FALLBACK_URL"] = fallback if isinstance(fallback, str) else fallback.url
    if openrouter is not None:
        env["OPENROUTER_API_KEY"] = KEY
        env["OPENROUTER_BASE_URL"] = openrouter.url + "/api/v1"
        env["OPENROUTER_DEFAULT_MODEL"] = "anthropic/claude-haiku-4-5"
        env["OPENROUTER_ALLOWED_MODELS"] = "openai/gpt-4o-mini, google/gemini-2.5-flash"
        env["OPENROUTER_HTTP_REFERER"] = "https://photos.example"
        env["OPENROUTER_APP_TITLE"] = "ImageApi"
    # Never the public server from a test: a port nothing listens on unless given a fake.
    env["NOMINATIM_URL"] = nominatim.url if nominatim is not None else "http://127.0.0.1:9"
    env.update(extra)
    return env


class BeanParams(msgspec.Struct, forbid_unknown_fields=True):
    n: int


class EchoParams(msgspec.Struct, forbid_unknown_fields=True):
    text: str
    times: int = 1


class Context:
    """Stands in for exif, tags and faces (``file_extras``), a thumbnailer (``render``)
    and a plugin with tools, so the insights plugin is tested alone."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.rendered: list[str] = []
        self.tool_calls: list[int] = []

    @hookimpl
    def file_extras(self, files):
        return {
            ref.id: {
                "date_taken": "2024-07-14T18:30:00+02:00",
                "exif": {
                    "camera_make": "Canon",
                    "camera_model": "Canon EOS R6",
                    "lens": "RF 35mm",
                    "width": 6000,
                    "height": 4000,
                    "gps": {"lat": 42.3741, "lon": -71.1169, "alt": None},
                },
                "tags": [{"id": 1, "name": "lake"}, {"id": 2, "name": "summer"}],
                "faces": [{"person": {"id": 3, "name": "Alice"}}, {"person_name": "Bob"}],
            }
            for ref in files
        }

    @hookimpl
    def render(self, file, size, format):
        self.rendered.append(f"{file.rel_path}:{size}:{format}")
        out = self.tmp / "preview.jpg"
        make_jpeg(out, size=(2000, 1000), color=(10, 120, 200))
        return RenderResult(out, "image/jpeg")

    @hookimpl
    def tools(self):
        async def count_beans(params: BeanParams, ctx: Any) -> dict[str, int]:
            self.tool_calls.append(params.n)
            if params.n < 0:
                raise ValueError("negative beans")
            return {"beans": params.n * 2}

        async def echo(params: EchoParams, ctx: Any) -> str:
            return params.text * params.times

        return [
            Tool("count_beans", "Count beans.", BeanParams, count_beans),
            Tool("echo", "Say it again.", EchoParams, echo),
        ]


@pytest.fixture
def photo(library: Path) -> Path:
    return make_jpeg(library / "trip" / "lake.jpg", size=(320, 200))
