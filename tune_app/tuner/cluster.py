"""Starting or joining Ray, and what its nodes offer."""

from __future__ import annotations

import argparse
import socket

from tune_app.errors import UsageError


def check_reachable(address: str) -> None:
    """ray.init waits minutes on an address nobody listens at; a TCP connect says so in seconds."""
    if address in ("auto", "local"):
        return  # Ray itself answers at once when it finds no local cluster
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot reach a Ray cluster at '{address}': {err}", key="--address",
                         fix="check the host and port (the head's port, 6379 by default; 10001 for "
                         "ray://), or drop --address to run on this machine") from None


def start_ray(args: argparse.Namespace):
    import ray

    if args.address:
        check_reachable(args.address)
    try:
        return ray.init(address=args.address, num_cpus=args.num_cpus if not args.address else None,
                        num_gpus=args.num_gpus if not args.address else None,
                        include_dashboard=True, dashboard_host=args.dashboard_host,
                        dashboard_port=args.dashboard_port, logging_level="warning",
                        ignore_reinit_error=True)
    except (ConnectionError, TimeoutError) as err:
        raise UsageError(f"cannot reach a Ray cluster at '{args.address}': {str(err).splitlines()[0][:160]}",
                         key="--address", fix="start one with `ray start --head`, or drop --address "
                         "to run on this machine") from None


def cluster_resources() -> list[dict[str, float]]:
    import ray

    return [n["Resources"] for n in ray.nodes() if n.get("Alive")]


