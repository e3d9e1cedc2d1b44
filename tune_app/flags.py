"""Range checks for command-line flags, run before anything starts.

argparse checks a flag's type; these check its range, and fail as every other user mistake
does (UsageError: one line naming the flag, exit 2) rather than with argparse's usage dump or
a traceback from deep inside Ray.
"""

from __future__ import annotations

import ipaddress
import math

from tune_app.errors import UsageError


def check_port(value: int | None, flag: str) -> None:
    if value is not None and not 1 <= value <= 65535:
        raise UsageError(f"port {value} is out of range", key=flag, fix="pass a TCP port from 1 to 65535")


def check_count(value: float | None, flag: str, *, allow_zero: bool, example: str) -> None:
    """A resource amount or count: finite, and > 0 (or >= 0 where zero means 'none')."""
    if value is None:
        return
    low_ok = value >= 0 if allow_zero else value > 0
    if not (math.isfinite(value) and low_ok):
        bound = ">= 0" if allow_zero else "> 0"
        raise UsageError(f"must be a finite number {bound}, got {value:g}", key=flag,
                         fix=f"pass e.g. {flag} {example}, or leave it out")


def check_interface(host: str, flag: str) -> None:
    """An IP address of this machine's interfaces, as Ray's dashboard_host expects
    (0.0.0.0 / :: for all of them)."""
    if host == "localhost":
        return
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise UsageError(f"'{host}' is not an IP address", key=flag,
                         fix="pass 127.0.0.1 (this machine only) or the address of one of its interfaces") from None
