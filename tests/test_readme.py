"""The README documents what the code accepts: every spec key, every search space file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tune_app.config import SECTIONS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_spec_key_is_documented():
    missing = [f"{name}.{f.name}" for name, cls in SECTIONS.items() for f in dataclasses.fields(cls)
               if f"`{name}.{f.name}`" not in README]
    assert not missing


def test_every_search_space_file_is_listed():
    for path in (Path(__file__).resolve().parents[1] / "search_spaces").glob("*.yaml"):
        assert f"search_spaces/{path.name}" in README


def test_the_spec_table_is_the_one_config_py_generates():
    """Rows are generated from the field docs (scripts/spec_reference.py --write), so a changed
    default or meaning cannot leave a stale row behind."""
    import runpy

    script = runpy.run_path(str(Path(__file__).resolve().parents[1] / "scripts" / "spec_reference.py"))
    assert script["table"]() in README
