"""The status page in a real browser: a real ``reconciler watch`` process (sandbox) serves
``/``, Debian's headless Chromium loads it, and the rendered DOM holds every fleet and
instance. Chromium is required (``.ci/run`` installs it): without it this test fails and
says how to install it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.controller.watch_process import (
    WatchProcess,
    addresses,
    environment,
    manifest,
    reconciler,
)

FLEETS = {"web": {"api": 2, "cache": 1}, "batch": {"worker": 1}}
INSTALL = (
    "Debian's Chromium is needed to test the status page in a real browser, and neither "
    "`chromium` nor `chromium-browser` is on PATH. Install it with "
    "`apt-get update && apt-get install -y --no-install-recommends chromium` "
    "(.ci/run does so on CI)."
)


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(INSTALL, pytrace=False)


def rendered_dom(url: str, profile: Path, *, timeout: float = 90) -> str:
    """What headless Chromium rendered of ``url`` (``--dump-dom``)."""
    command = [
        chromium_binary(),
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--dump-dom",
        url,
    ]
    # Its own session: on a timeout the whole browser (zygote, renderer...) is killed, so no
    # child keeps the pipes open.
    browser = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = browser.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(browser.pid, signal.SIGKILL)
        browser.communicate()
        pytest.fail(f"Chromium did not render {url} within {timeout:.0f}s", pytrace=False)
    assert browser.returncode == 0 and out.strip(), (
        f"Chromium exited {browser.returncode} for {url}:\n{err[-3000:]}"
    )
    return out


class PageText(HTMLParser):
    """The text of every element with a class or an id, by class and by tag."""

    def __init__(self) -> None:
        super().__init__()
        self.by_class: dict[str, list[str]] = {}
        self.by_tag: dict[str, list[str]] = {}
        self._open: list[tuple[str, list[str], list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = next((v or "" for k, v in attrs if k == "class"), "").split()
        self._open.append((tag, classes, []))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            opened, classes, parts = self._open.pop()
            text = "".join(parts).strip()
            if self._open:
                self._open[-1][2].append(text)
            self.by_tag.setdefault(opened, []).append(text)
            for name in classes:
                self.by_class.setdefault(name, []).append(text)
            if opened == tag:
                return

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1][2].append(data)


def test_the_status_page_renders_every_fleet_and_instance_in_headless_chromium(
    tmp_path: Path,
) -> None:
    chromium_binary()  # fail first, and clearly, when it is missing
    fleets = tmp_path / "fleets"
    fleets.mkdir()
    for name, replicas in FLEETS.items():
        (fleets / f"{name}.yaml").write_text(manifest(name, replicas))
    env = environment()
    state = str(tmp_path / "state")
    applied = reconciler(
        "apply", str(fleets), "--sandbox", "--auto-approve", "--state-dir", state, env=env
    )
    assert applied.returncode == 0, applied.stderr
    wanted = sorted(a for name, replicas in FLEETS.items() for a in addresses(name, replicas))

    args = [str(fleets), "--sandbox", "--state-dir", state, "--interval", "1s"]
    with WatchProcess([*args, "--listen", "127.0.0.1:0"], env=env) as watch:
        url = watch.url()
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0/")
        status = watch.status(until=lambda body: sorted(body["fleets"]) == sorted(FLEETS))
        ids = {
            i["address"]: i["instance_id"]
            for f in status["fleets"].values()
            for i in f["instances"]
        }
        assert sorted(ids) == wanted and all(ids.values()), status

        dom = rendered_dom(url, tmp_path / "chromium-profile")
        code, _ = watch.stop(signal.SIGTERM)
        assert code == 0, watch.describe()

    page = PageText()
    page.feed(dom)
    page.close()
    assert page.by_tag.get("title") == ["reconciler watch"], dom
    assert len(page.by_class["fleet"]) == len(FLEETS), dom
    assert sorted(t for t in page.by_tag["h2"] if t != "Last events") == sorted(FLEETS), dom
    assert sorted(page.by_class["address"]) == wanted, dom
    assert page.by_class["status"] == ["active"] * len(wanted), dom
    assert all(price.startswith("$") and price.endswith("/h") for price in page.by_class["money"])
    for address, instance_id in ids.items():
        assert instance_id in dom, (address, dom)
    assert "cycle(s); last successful" in dom
