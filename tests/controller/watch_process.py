"""``reconciler watch`` as a real process, for the CLI and browser tests: its stderr read line
by line in a thread (so a test waits for an event without blocking on a full pipe), the URL of
``--listen`` taken from its "listen" event, and a stop by signal that times the exit.

Example::

    with WatchProcess(["fleets/", "--sandbox", "--listen", "127.0.0.1:0"], env=env) as watch:
        url = watch.url()
        code, seconds = watch.stop(signal.SIGTERM)
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

RECONCILER = [sys.executable, "-m", "reconciler"]
# The "listen" event's message, in a text line or a JSON object.
LISTENING = re.compile(r"serving /metrics, /healthz and / on (http://[^\s\"]+/)")


def manifest(fleet: str, replicas: Mapping[str, int]) -> str:
    """A small fleet of on-demand A6000s in hyperstack canada-1 (always in stock)."""
    lines = [
        f"fleet: {fleet}",
        "defaults:",
        "  cloud: hyperstack",
        "  region: canada-1",
        "  shade_instance_type: A6000",
        "  shade_cloud: true",
        "instances:",
    ]
    for name, count in replicas.items():
        lines.append(f"  - name: {name}")
        if count != 1:
            lines.append(f"    replicas: {count}")
    return "\n".join(lines) + "\n"


def addresses(fleet: str, replicas: Mapping[str, int]) -> list[str]:
    return [
        f"{fleet}/{name}" if count == 1 else f"{fleet}/{name}-{n}"
        for name, count in replicas.items()
        for n in range(count)
    ]


def environment(**extra: str) -> dict[str, str]:
    """This environment for a child ``reconciler``: no colour, unbuffered, no backend override,
    sandbox instances active at once."""
    env = dict(os.environ, NO_COLOR="1", PYTHONUNBUFFERED="1", RECONCILER_SANDBOX_BOOT_SECONDS="0")
    for name in ("RECONCILER_BACKEND", "RECONCILER_STATE_DIR", "SHADEFORM_API_URL"):
        env.pop(name, None)
    env.update(extra)
    return env


def reconciler(
    *args: str, env: Mapping[str, str], cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RECONCILER, *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class WatchProcess:
    """``reconciler watch ARGS...`` in the background."""

    def __init__(self, args: list[str], *, env: Mapping[str, str], cwd: Path | None = None):
        self.args = args
        self.proc = subprocess.Popen(
            [*RECONCILER, "watch", *args],
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.stdout = ""
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read_stderr, daemon=True),
            threading.Thread(target=self._read_stdout, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        self.stdout = self.proc.stdout.read()

    def describe(self) -> str:
        return (
            f"`reconciler watch {' '.join(self.args)}` (exit {self.proc.poll()}) wrote on "
            "stderr:\n" + "\n".join(self.lines) + (f"\nand on stdout:\n{self.stdout}")
        )

    def wait_for_line(self, matches: Callable[[str], bool], *, timeout: float = 30) -> str:
        """The first stderr line for which ``matches`` holds, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    if matches(line):
                        return line
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no such line after {timeout}s: {self.describe()}")
                if self.proc.poll() is not None and not self._readers[0].is_alive():
                    raise AssertionError(f"it exited first: {self.describe()}")
                self._changed.wait(min(left, 0.2))

    def event(self, name: str, *, timeout: float = 30) -> dict[str, Any]:
        """The first ``--log-format json`` event called ``name``."""
        line = self.wait_for_line(lambda text: _event_name(text) == name, timeout=timeout)
        return json.loads(line)  # type: ignore[no-any-return]

    def url(self, *, timeout: float = 30) -> str:
        """The status server's URL, from the "listen" event (text or JSON)."""
        line = self.wait_for_line(lambda text: LISTENING.search(text) is not None, timeout=timeout)
        match = LISTENING.search(line)
        assert match is not None
        return match.group(1)

    def status(self, *, timeout: float = 30, until: Callable[[dict[str, Any]], bool]) -> Any:
        """``/status.json`` once ``until`` holds for it."""
        url = self.url()
        deadline = time.monotonic() + timeout
        body: Any = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"it exited: {self.describe()}")
            try:
                body = httpx.get(url + "status.json", timeout=5).json()
            except httpx.HTTPError:
                body = None
            if body is not None and until(body):
                return body
            time.sleep(0.1)
        raise AssertionError(f"/status.json never got there: {body}\n{self.describe()}")

    def stop(self, signum: int = signal.SIGTERM, *, timeout: float = 30) -> tuple[int, float]:
        """Send ``signum``; the exit code and the seconds it took to exit."""
        sent = time.monotonic()
        self.proc.send_signal(signum)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"still running {timeout}s after signal {signum}: {self.describe()}"
            ) from None
        took = time.monotonic() - sent
        for reader in self._readers:
            reader.join(timeout=5)
        return code, took

    def wait(self, *, timeout: float = 60) -> int:
        code = self.proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=5)
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for reader in self._readers:
            reader.join(timeout=5)

    def __enter__(self) -> WatchProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _event_name(line: str) -> str | None:
    try:
        parsed = json.loads(line)
    except ValueError:
        return None
    return parsed.get("event") if isinstance(parsed, dict) else None
