"""Job functions of the sweep fault tests, imported by name in the worker processes.

A job ``{"x": int, "die": "always" | "once" | None, "marker": path, "sleep": s}`` returns
``{"double": 2 x}``; ``die="always"`` SIGKILLs its worker process (as the OOM killer would),
``die="once"`` does so only on its first attempt (the marker file records the attempt).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def job(spec: dict) -> dict:
    if spec.get("pid_file"):
        with open(spec["pid_file"], "a") as handle:
            handle.write(f"{os.getpid()}\n")
    if spec.get("sleep"):
        time.sleep(spec["sleep"])
    die = spec.get("die")
    if die == "always":
        os.kill(os.getpid(), signal.SIGKILL)
    if die == "once":
        marker = Path(spec["marker"])
        if not marker.exists():
            marker.write_text("died once")
            os.kill(os.getpid(), signal.SIGKILL)
    if spec.get("raise"):
        raise ValueError(f"bad combination x={spec['x']}")
    return {"double": 2 * spec["x"]}
