"""Start a real server process on a free loopback port for a test, and stop it afterwards."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def responds(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.HTTPError):
        return False


@contextmanager
def running(command: Sequence[str], ready_url: str, log_path: Path, *, startup_seconds: float = 120,
            env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """Run `command` until `ready_url` answers 200; fail the test with the log's tail if it never does."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen(list(command), stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + startup_seconds
            while not responds(ready_url):
                if process.poll() is not None:
                    pytest.fail(f"{command[0]} exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
                if time.monotonic() > deadline:
                    pytest.fail(f"not ready after {startup_seconds} s:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.5)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
