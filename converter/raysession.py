"""Ray for `converter endpoint` and `converter batch`: started here, embedded, or connected to a cluster.

Ray started here keeps to itself: its logs go to its session folder (/tmp/ray/session_*), not the terminal; usage
statistics are never sent (no network access); its token authentication stays on, asked for by name, which
keeps it on without the notice it prints at every start (RAY_AUTH_MODE=token, unless set otherwise: Ray reads it
when imported, so only before that). A cluster started with `ray start` has token authentication on too: this
side then sends the token of ~/.ray/auth_token (or RAY_AUTH_TOKEN), as Ray's own CLI does. A cluster address that nothing answers fails in seconds, where ray.init
would wait minutes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys

from .errors import UsageError, first_line


@contextlib.contextmanager
def session(address: str | None, stage: str, local: dict):
    """Yields the ray module, initialised: with `local` (ray.init's settings) here, or connected to `address`.
    Shuts Ray down on the way out (unless the caller had it running already)."""
    if "ray" not in sys.modules:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    import ray

    for name in ("ray", "ray.serve"):  # after the import, which configures them; serve.start sets its level
        logger = logging.getLogger(name)  # again, so a filter keeps its INFO lines out of the terminal
        logger.setLevel(logging.ERROR)
        logger.addFilter(_errors_only)
    if ray.is_initialized():  # a caller's own Ray (in-process use)
        yield ray
        return
    settings = {"address": address} if address else {"address": "local", "include_dashboard": False, **local}
    if address:
        _check_reachable(address, stage)
    try:
        ray.init(**settings, log_to_driver=False, logging_level=logging.ERROR)
    except Exception as exc:
        if address:
            raise UsageError(f"cannot connect to the Ray cluster at {address}: {first_line(exc)}", stage=stage,
                             hint="check the address (`ray status` on the head node), or leave --address out to "
                                  f"run here; the cluster must run Ray {ray.__version__}") from None
        raise
    try:
        yield ray
    finally:
        ray.shutdown()


def _errors_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR


def _check_reachable(address: str, stage: str) -> None:
    if address in ("auto", "local"):
        return
    client = address.startswith("ray://")
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    if not colon:
        host, port = port, ""
    try:
        socket.create_connection((host, int(port or (10001 if client else 6379))), timeout=5).close()
    except (OSError, ValueError) as exc:
        raise UsageError(f"no Ray cluster answers at {address}: {getattr(exc, 'strerror', None) or exc}", stage=stage,
                         hint="start one with `ray start --head` (it prints its address; ray://HOST:10001 for a "
                              "Ray client), or leave --address out to run here") from None
