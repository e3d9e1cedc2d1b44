"""User-facing errors and the one place that turns them into exit code 2."""

from __future__ import annotations

import difflib
import functools
import sys
from typing import Callable, Iterable

USAGE_EXIT = 2
INTERRUPTED_EXIT = 130


class UsageError(Exception):
    """A mistake the user can fix: printed as one line, exit code 2, no traceback."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None,
                 line: int | None = None, fix: str | None = None):
        self.message, self.file, self.key, self.line, self.fix = message, file, key, line, fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        key = f"{self.key}: " if self.key else ""
        fix = f" (fix: {self.fix})" if self.fix else ""
        return f"{where}{key}{self.message}{fix}"


def cli_entry(main: Callable[..., int | None]) -> Callable[..., int]:
    """Wrap a CLI main so that UsageError becomes `error: ...` on stderr and exit 2.

    Ctrl-C becomes `interrupted` and exit 130. Anything else is a bug in tune_app and keeps
    its traceback.
    """

    @functools.wraps(main)
    def wrapper(argv: list[str] | None = None) -> int:
        try:
            return main(argv) or 0
        except UsageError as err:
            print(f"error: {err.one_line()}", file=sys.stderr)
            return USAGE_EXIT
        except KeyboardInterrupt:
            # Ctrl-C is the user's choice, not a bug: one line, the shell's code for SIGINT.
            print("interrupted", file=sys.stderr)
            return INTERRUPTED_EXIT

    return wrapper


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """The fix for an unknown name: the closest valid one, else all of them."""
    options = list(options)
    close = difflib.get_close_matches(str(word), options, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else f"valid keys: {', '.join(sorted(options))}"
