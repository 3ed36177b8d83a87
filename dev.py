#!/usr/bin/env python3
"""Set up and run salvage-cds on a machine that has nothing but Python 3.11+.

    python3 dev.py demo [--port N]  # create .venv, install, start the offline demo
    python3 dev.py test   # create .venv, install, run lint, type checks and the whole test suite
    python3 dev.py bench  # create .venv, install, run the benchmarks in bench/ (prints figures)

Only the standard library is used here, so this file runs before anything is installed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
STAMP = VENV / ".installed-from"


def run(*cmd: str | Path) -> int:
    """Run a command in its own process group and pass SIGINT, SIGTERM and SIGHUP on to that
    whole group, so `kill -INT <dev.py>` or Ctrl-C stops every server the command started."""
    print("+", " ".join(str(c) for c in cmd), flush=True)
    if os.name == "nt":
        return subprocess.call([str(c) for c in cmd], cwd=ROOT)
    child = subprocess.Popen([str(c) for c in cmd], cwd=ROOT, start_new_session=True)

    def forward(signum: int, _frame: object) -> None:
        try:
            os.killpg(child.pid, signum)
        except ProcessLookupError:
            pass

    wanted = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, forward) for sig in wanted}
    try:
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def ensure_environment() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"salvage-cds needs Python 3.11 or newer, this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = (ROOT / "pyproject.toml").read_text()
    if not STAMP.exists() or STAMP.read_text() != wanted:
        if run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip") != 0:
            sys.exit("pip upgrade failed")
        if run(PYTHON, "-m", "pip", "install", "--quiet", "-e", ".[test,demo]") != 0:
            sys.exit("installing salvage-cds failed")
        STAMP.write_text(wanted)


def ensure_system_packages() -> None:
    """Browser tests drive Debian's chromium (never a browser downloaded by a test tool); the
    database tests start a throwaway server from Debian's postgresql package; the Spark test
    (population mode, `--spark local[2]`) needs a Java runtime: Debian's OpenJDK 17."""
    missing = [
        pkg
        for pkg, present in (
            ("chromium", shutil.which("chromium")),
            ("postgresql", list(Path("/usr/lib/postgresql").glob("*/bin/initdb"))),
            ("openjdk-17-jre-headless", shutil.which("java")),
        )
        if not present
    ]
    if not missing:
        return
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        print(f"installing Debian packages for the tests: {' '.join(missing)}", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.call(["apt-get", "update", "-qq"], env=env)
        if subprocess.call(["apt-get", "install", "-y", "-qq", *missing], env=env) == 0:
            return
    if "chromium" in missing:
        sys.exit("chromium is needed for the browser tests: install Debian's 'chromium' package")
    if "openjdk-17-jre-headless" in missing:
        sys.exit("Java 17 is needed for the Spark test: install 'openjdk-17-jre-headless'")
    print(
        "postgresql is not installed: the PostgreSQL half of tests/test_database.py is skipped",
        flush=True,
    )


def demo() -> int:
    return run(BIN / "salvage", "demo", "--fixtures", ROOT / "fixtures", *sys.argv[2:])


def test() -> int:
    ensure_system_packages()
    for step in (
        (PYTHON, "-m", "ruff", "check", "."),
        (PYTHON, "-m", "ruff", "format", "--check", "."),
        (PYTHON, "-m", "mypy"),
    ):
        if run(*step) != 0:
            return 1
    os.environ.setdefault("PYSPARK_PYTHON", str(PYTHON))  # Spark's workers: this venv's Python
    return run(PYTHON, "-m", "pytest", *sys.argv[2:])


def bench() -> int:
    status = run(PYTHON, ROOT / "bench" / "bench_engine.py", *sys.argv[2:])
    status = status or run(PYTHON, ROOT / "bench" / "bench_cds.py")
    return status or run(PYTHON, ROOT / "bench" / "bench_smart.py")


COMMANDS = {"demo": demo, "test": test, "bench": bench}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    ensure_environment()
    sys.exit(COMMANDS[sys.argv[1]]())
