"""python -m sandbox: run the sandbox EHR until Ctrl-C."""

from __future__ import annotations

import signal
import threading

from sandbox.config import load_config
from sandbox.runtime import RunningSandbox


def main() -> None:
    config = load_config()
    sandbox = RunningSandbox(config).start()
    print(f"Sandbox EHR: {config.ehr_base}/  (FHIR base for apps: {config.fhir_base})", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
