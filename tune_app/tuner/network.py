"""Which interfaces the local Ray instance listens on.

On Linux Ray gives a node the address other machines route to, and its servers listen there or
on every interface: the dashboard agent's Prometheus metrics port answers anyone, without Ray's
auth token, even when the dashboard itself is on 127.0.0.1. A search that starts its own Ray
instance (no --address) with the dashboard on loopback has no use for other machines, so it
runs Ray as Ray runs on a laptop: node address 127.0.0.1, which makes Ray bind its gRPC servers
(GCS, raylet, workers), the dashboard agent (HTTP, gRPC, metrics) and the runtime-env agent to
loopback. Ray's switch for that is the environment variable below (meant for macOS/Windows,
where it is the default); `ray.init(_node_ip_address="127.0.0.1")` does not work, Ray 2.60
rewrites a loopback address to the routable one.
"""

from __future__ import annotations

import ipaddress
import os
import sys

# "0": Ray treats this machine as a single-node cluster on loopback (ray/_private/services.py,
# get_node_ip_address). Read by Ray at import and inherited by the processes it starts.
SINGLE_HOST_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_USER_SETTING = os.environ.get(SINGLE_HOST_ENV)  # what to go back to for a later, exposed run


def keep_local_ray_on_loopback(dashboard_host: str, address: str | None) -> bool:
    """Before ray.init: run the Ray instance this process starts on loopback only, unless the
    user joins a cluster (--address) or exposes the dashboard (--dashboard-host). Returns
    whether it does."""
    loopback = not address and is_loopback(dashboard_host)
    if loopback:
        os.environ[SINGLE_HOST_ENV] = "0"
    elif _USER_SETTING is None:
        os.environ.pop(SINGLE_HOST_ENV, None)
    else:
        os.environ[SINGLE_HOST_ENV] = _USER_SETTING
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:
        # Ray was imported before this call (a notebook, a test session) and read the variable
        # then. Ray is pinned (setup.cfg); this is the constant the variable sets.
        from ray._private.ray_constants import IS_WINDOWS_OR_OSX, env_bool

        constants.ENABLE_RAY_CLUSTER = env_bool(SINGLE_HOST_ENV, not IS_WINDOWS_OR_OSX)
    return loopback
