"""The suite's ``requires_plugins`` marker, run on generated test files with the suite's
own conftest and pytest settings (``--strict-markers``: the marker is registered)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from kernel.manager import ENTRY_POINT_GROUP, builtin_plugin_names

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent

GENERATED = """
import pytest

PRESENT = {present!r}


@pytest.mark.requires_plugins(PRESENT)
def test_present_plugin_runs():
    pass


@pytest.mark.requires_plugins({entry_point!r})
def test_installed_entry_point_counts():
    pass


@pytest.mark.requires_plugins("nosuch")
def test_absent_plugin_skips():
    raise AssertionError("must not run")


@pytest.mark.requires_plugins(PRESENT, "nosuch", "gone")
def test_one_absent_of_several_skips():
    raise AssertionError("must not run")


@pytest.mark.requires_plugins("nosuch")
class TestMarkedClass:
    def test_method(self):
        raise AssertionError("must not run")
"""

MODULE_MARKED = """
import pytest

pytestmark = pytest.mark.requires_plugins("nosuch")


def test_in_marked_module():
    raise AssertionError("must not run")
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester folder with this suite's pyproject settings and conftest."""
    pytester.makepyprojecttoml((ROOT / "pyproject.toml").read_text())
    tests = pytester.mkdir("tests")
    (tests / "conftest.py").write_text((TESTS / "conftest.py").read_text())
    return pytester


def test_marker_skips_when_any_named_plugin_is_missing(suite):
    present = builtin_plugin_names()[0]
    installed = [ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)]
    entry_point = installed[0] if installed else present
    tests = suite.path / "tests"
    (tests / "test_generated.py").write_text(
        GENERATED.format(present=present, entry_point=entry_point)
    )
    (tests / "test_module_marked.py").write_text(MODULE_MARKED)
    result = suite.runpytest("--strict-markers", "-rs")
    result.assert_outcomes(passed=2, skipped=4)
    result.stdout.fnmatch_lines(
        [
            "*test_generated.py*needs plugin(s) not available here: gone, nosuch",
            "*needs plugin(s) not available here: nosuch",
        ]
    )
    assert present not in "".join(line for line in result.outlines if "SKIPPED" in line)


def test_marker_without_names_is_a_usage_error(suite):
    (suite.path / "tests" / "test_bare.py").write_text(
        "import pytest\n\n\n@pytest.mark.requires_plugins\ndef test_bare():\n    pass\n"
    )
    result = suite.runpytest("--strict-markers")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "requires_plugins takes plugin names" in result.stderr.str()


def test_marker_is_registered(pytestconfig):
    assert any(line.startswith("requires_plugins") for line in pytestconfig.getini("markers"))
