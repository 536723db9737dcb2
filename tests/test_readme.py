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


def plugin_sections() -> str:
    """Each plugin's README with its headings one level down, in plugins.toml's order
    (plugins not named there follow, by name)."""
    named = list(tomllib.loads((ROOT / "plugins.toml").read_text()).get("plugins", {}))
    present = sorted(p.parent.name for p in (ROOT / "plugins").glob("*/README.md"))
    order = [n for n in named if n in present] + [n for n in present if n not in named]
    parts = []
    for name in order:
        text = (ROOT / "plugins" / name / "README.md").read_text().strip()
        parts.append(re.sub(r"^(#+) ", r"#\1 ", text, flags=re.MULTILINE))
    return "\n\n".join(parts)


def expected(readme: str) -> str:
    before, _, rest = readme.partition(START)
    _, _, after = rest.partition(END)
    return f"{before}{START}\n\n{plugin_sections()}\n\n{END}{after}"


def test_the_readme_carries_every_plugin_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    assert START in readme and END in readme
    assert readme == expected(readme), "run: .venv/bin/python tests/test_readme.py --write"


if __name__ == "__main__" and "--write" in sys.argv:
    path = ROOT / "README.md"
    path.write_text(expected(path.read_text()))
