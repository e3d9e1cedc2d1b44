"""Print (or with --write, rewrite in README.md) the spec reference table from config.py.

The dataclass field docs are the one source of the keys' meaning; tests/test_readme.py checks
that README's table is exactly this output.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from pathlib import Path

from tune_app.config import SECTIONS
from tune_app.spec import _type_name

README = Path(__file__).resolve().parent.parent / "README.md"
HEADER = "| key | type | default | meaning |\n| --- | --- | --- | --- |\n"


def table() -> str:
    rows = []
    for section, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            rows.append(f"| `{section}.{f.name}` | {_type_name(hints[f.name])} | `{default}` | {f.metadata['doc']} |\n")
    return HEADER + "".join(rows)


def main() -> int:
    text = README.read_text(encoding="utf-8")
    start = text.index(HEADER)
    end = start + len(HEADER)
    lines = text[end:].splitlines(keepends=True)
    while lines and lines[0].startswith("| `"):
        end += len(lines.pop(0))
    if "--write" in sys.argv:
        README.write_text(text[:start] + table() + text[end:], encoding="utf-8")
    else:
        print(table(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
