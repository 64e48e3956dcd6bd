"""Run the emulator as a separate process (crash tests and benchmarks need a real server that
survives the reconciler being killed, and does not share its interpreter).

Example::

    with emulator_process("--boot-seconds", "0", "--latency-ms", "20") as base_url:
        ...  # SHADEFORM_API_URL=base_url, SHADEFORM_API_KEY=SANDBOX_API_KEY
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_URL = re.compile(r"(http://\S+/v1)")


@contextmanager
def emulator_process(*flags: str, startup_timeout: float = 30.0) -> Iterator[str]:
    """Start ``python -m reconciler emulator --port 0 FLAGS...``; yield its base URL."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "emulator", "--port", "0", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = _URL.search(line)
        if not match:
            rest = proc.stdout.read() if proc.poll() is not None else ""
            raise RuntimeError(f"the emulator did not start: {line}{rest}")
        # Keep draining its output so a chatty server never blocks on a full pipe.
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        yield match.group(1)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
