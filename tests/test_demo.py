"""Issue 14: the demo refuses a port in use with a clear message, starts on the port asked for,
and `kill -INT` on dev.py stops every server it started, quietly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support_sandbox import free_port

ROOT = Path(__file__).resolve().parent.parent


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_a_port_in_use_is_named_and_nothing_starts(tmp_path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "salvage.cli",
                "demo",
                "--port",
                str(port),
                "--fixtures",
                str(ROOT / "fixtures"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=tmp_path,
        )
    assert result.returncode == 2
    assert f"port {port}" in result.stderr and "in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_dev_py_demo_on_a_chosen_port_stops_everything_on_sigint(tmp_path) -> None:
    port = free_port()
    env = {**os.environ, "SALVAGE_DEMO_INSTANCE": str(tmp_path / "demo")}
    out = (tmp_path / "out.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "dev.py"), "demo", "--port", str(port)],
        stdout=out,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 150
        while "demo ready" not in (tmp_path / "out.log").read_text():
            assert process.poll() is None, (tmp_path / "out.log").read_text()
            assert time.monotonic() < deadline, "the demo did not start"
            time.sleep(0.5)
        assert f"http://127.0.0.1:{port}/" in (tmp_path / "out.log").read_text()
        assert "SALVAGE_DATABASE_URL=" in (tmp_path / "out.log").read_text()
        assert "salvage feedback" in (tmp_path / "out.log").read_text()
        assert _listening(port)
        # the chart's patient-view cards come from the service on its own port (port + 100 or
        # a free one), not the default 8700: on a chosen port they were silently missing
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/chart/dlbcl-early-relapse", timeout=60
        ) as page:
            chart = page.read().decode()
        assert "data-card" in chart and 'role="alert"' not in chart, chart[-2000:]
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        out.close()
    text = (tmp_path / "out.log").read_text()
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    time.sleep(1)
    assert not _listening(port)  # the EHR and everything behind it stopped
