"""The top-level README carries every built-in plugin's own README, so an operator reads
one document; this test fails when they drift apart.

    .venv/bin/python tests/test_readme.py --write   # copy the plugin READMEs in again
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- plugin sections -->", "<!-- end of plugin sections -->"


def demoted(name: str) -> str:
    """A plugin's README with its headings one level down, as the top README carries it."""
    text = (ROOT / "plugins" / name / "README.md").read_text().strip()
    return re.sub(r"^(#+) ", r"#\1 ", text, flags=re.MULTILINE)


def plugin_names() -> list[str]:
    """Built-in plugins with a README, in plugins.toml's order (others follow, by name)."""
    named = list(tomllib.loads((ROOT / "plugins.toml").read_text()).get("plugins", {}))
    present = sorted(p.parent.name for p in (ROOT / "plugins").glob("*/README.md"))
    return [n for n in named if n in present] + [n for n in present if n not in named]


def plugin_sections() -> str:
    return "\n\n".join(demoted(name) for name in plugin_names())


def expected(readme: str) -> str:
    before, _, rest = readme.partition(START)
    _, _, after = rest.partition(END)
    return f"{before}{START}\n\n{plugin_sections()}\n\n{END}{after}"


def test_the_readme_carries_every_plugin_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    sections = readme.partition(START)[2].partition(END)[0]
    stale = [name for name in plugin_names() if demoted(name) not in sections]
    assert not stale, f"{stale}: run .venv/bin/python tests/test_readme.py --write"


if __name__ == "__main__" and "--write" in sys.argv:
    path = ROOT / "README.md"
    path.write_text(expected(path.read_text()))
