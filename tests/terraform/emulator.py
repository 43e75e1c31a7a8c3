"""A moto server in its own process group on 127.0.0.1, started and stopped by the test that needs it.

Run as `python -m tests.terraform.emulator`: applies the gap fills of `gaps.py`, binds an ephemeral port (no race
for a "free" port) and prints it on stdout, then serves until SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
READY = "moto listening on port "


@dataclass
class MotoServer:
    """One emulated AWS account (moto keeps its state per process: one process per scenario isolates them)."""

    process: subprocess.Popen[str]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, workdir: Path, amis: list[dict[str, Any]]) -> MotoServer:
        """Start a server whose EC2 knows exactly `amis` (moto's `MOTO_AMIS_PATH`, `moto/ec2/models/amis.py`) and
        AWS's managed IAM policies (`MOTO_IAM_LOAD_MANAGED_POLICIES`, `moto/settings.py`); it logs to workdir."""
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "amis.json").write_text(json.dumps(amis))
        log = workdir / "moto.log"
        env = dict(
            os.environ,
            MOTO_AMIS_PATH=str(workdir / "amis.json"),
            MOTO_IAM_LOAD_MANAGED_POLICIES="true",
            PYTHONUNBUFFERED="1",
        )
        with log.open("w") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.terraform.emulator"],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                start_new_session=True,
            )
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith(READY):
            cls(process, 0).stop()
            raise RuntimeError(f"moto server did not start: {line!r}; see {log}")
        return cls(process, int(line.removeprefix(READY)))

    def stop(self) -> None:
        """Stop the whole process group (werkzeug's threads included), also when it already died; idempotent."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()


def _exit_with_parent(parent: int) -> None:
    """The server runs in a session of its own (so that a stop reaches every thread of it): if the test process
    dies without stopping it (SIGKILL), it must not outlive it."""
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def serve() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    from tests.terraform import gaps

    gaps.install()
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    server = make_server("127.0.0.1", 0, DomainDispatcherApplication(create_backend_app), threaded=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    os.environ["MOTO_PORT"] = str(server.server_port)
    print(f"{READY}{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve()
