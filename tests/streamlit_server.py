"""The real dashboard as a server, for the browser and load tests: `streamlit run app.py` on a free local port over a
given cache, started and stopped in one place (not a test module)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    """The resident memory of a process, from /proc (NaN for a process that has none left, e.g. a zombie)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass(frozen=True)
class Server:
    proc: subprocess.Popen
    port: int
    url: str  # http://127.0.0.1:<port>
    log_path: Path


@contextmanager
def serve(cache: Path, log_path: Path, *, drop_env: tuple[str, ...] = (), stop_wait: float = 10) -> Iterator[Server]:
    """Run the dashboard on the quick profile over `cache` until the block ends; its output goes to `log_path`.

    Fails the test (with the log's tail) when the server is not healthy within 60 s.

    Args:
        cache: the LANDSCAPE_CACHE_DIR of the server.
        log_path: where the server's stdout and stderr go.
        drop_env: environment variables the server must not inherit.
        stop_wait: seconds to wait after SIGTERM before SIGKILL.
    """
    port = free_port()
    env = os.environ | {
        "LANDSCAPE_CACHE_DIR": str(cache),
        "LANDSCAPE_DASHBOARD_PROFILE": "quick",
        "PYTHONUNBUFFERED": "1",
    }
    for name in drop_env:
        env.pop(name, None)
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port)]
    cmd += ["--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"streamlit did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        yield Server(proc, port, url, log_path)
        log.flush()
    finally:
        proc.terminate()
        try:
            proc.wait(stop_wait)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
