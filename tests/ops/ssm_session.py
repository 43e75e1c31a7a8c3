"""Stand-ins for the AWS CLI's `aws ssm start-session` and the Session Manager plugin it runs, installed first on
PATH where the real ones are found, for the cluster phase's port forward to the API.

What each does, from the real source:
- `aws ssm start-session` (aws/aws-cli awscli/customizations/sessionmanager.py, StartSessionCaller.invoke): calls
  StartSession, then runs `session-manager-plugin RESPONSE REGION StartSession PROFILE PARAMETERS ENDPOINT` with
  `check_call` inside `ignore_user_entered_signals()` (awscli/compat.py: SIGINT, SIGQUIT and SIGTSTP ignored, so
  that Ctrl-C reaches the plugin, not the CLI); it exits when the plugin does.
- `session-manager-plugin`, local port forwarding (aws/session-manager-plugin src/sessionmanagerplugin/session/
  session.go:222 prints "\nStarting session with SessionId: ID\n"; portsession/muxportforwarding.go:245-258 listens
  on localhost:PORT, prints "Port PORT opened for sessionId ID." then "\nWaiting for connections...\n", and forwards
  each connection to the instance's port; its handleControlSignals (muxportforwarding.go:187-200) catches
  sessionutil.ControlSignals, which on Unix are SIGINT, SIGTSTP and SIGQUIT (control_signals_unix.go:35), prints
  "Terminate signal received, exiting." and "\n\nExiting session with sessionId: ID.\n\n", and exits 0. SIGTERM is
  not among them: Go's default ends the process at once.
The instance's API port is FAKE_SSM_FORWARD_TO (host:port, the lab's API server); every start is recorded in
FAKE_SSM_RECORD as the plugin's pid and arguments.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

AWS = """#!{python}
import json, signal, subprocess, sys, uuid
args = sys.argv[1:]
assert args[:2] == ["ssm", "start-session"], args
options = dict(zip(args[2::2], args[3::2]))
parameters = {{"Target": options["--target"], "DocumentName": options["--document-name"],
              "Parameters": json.loads(options["--parameters"])}}
response = json.dumps({{"SessionId": "fake-" + uuid.uuid4().hex[:17], "TokenValue": "t", "StreamUrl": "wss://x"}})
for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP):  # ignore_user_entered_signals
    signal.signal(sig, signal.SIG_IGN)
sys.exit(subprocess.call(["session-manager-plugin", response, options["--region"], "StartSession", "",
                          json.dumps(parameters), "https://ssm.example"]))
"""

PLUGIN = """#!{python}
import json, os, signal, socket, sys, threading
response, parameters = json.loads(sys.argv[1]), json.loads(sys.argv[5])
session, port = response["SessionId"], parameters["Parameters"]["localPortNumber"][0]
host, target = os.environ["FAKE_SSM_FORWARD_TO"].rsplit(":", 1)
with open(os.environ["FAKE_SSM_RECORD"], "a") as out:
    out.write(json.dumps({{"pid": os.getpid(), "args": sys.argv[1:]}}) + "\\n")
sys.stdout.write("\\nStarting session with SessionId: %s\\n" % session)
sys.stdout.flush()

def stop(*_):
    sys.stdout.write("Terminate signal received, exiting.\\n\\n\\nExiting session with sessionId: %s.\\n\\n" % session)
    sys.stdout.flush()
    os._exit(0)

for sig in (signal.SIGINT, signal.SIGTSTP, signal.SIGQUIT):
    signal.signal(sig, stop)
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("localhost", int(port)))
listener.listen()
sys.stdout.write("Port %s opened for sessionId %s." % (port, session))
sys.stdout.write("\\nWaiting for connections...\\n")
sys.stdout.flush()

def pipe(src, dst):
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

while True:
    client, _ = listener.accept()
    upstream = socket.create_connection((host, int(target)))
    for a, b in ((client, upstream), (upstream, client)):
        threading.Thread(target=pipe, args=(a, b), daemon=True).start()
"""


def install(bin_dir: Path, forward_to: str, record: Path) -> dict[str, str]:
    """Both stand-ins in bin_dir; the environment that puts them first on PATH and tells them where to forward."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, script in (("aws", AWS), ("session-manager-plugin", PLUGIN)):
        (bin_dir / name).write_text(script.format(python=sys.executable))
        (bin_dir / name).chmod(0o755)
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_SSM_FORWARD_TO": forward_to,
        "FAKE_SSM_RECORD": str(record),
    }


def started(record: Path) -> list[int]:
    """The process ids of the plugins started so far, in order (each start is a line of `record`)."""
    return [json.loads(line)["pid"] for line in record.read_text().splitlines()] if record.is_file() else []


def gone(pid: int, seconds: float = 30) -> bool:
    """Whether the process ends within `seconds`."""
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def alive(pid: int) -> bool:
    """Whether the process is still there (a zombie counts as gone: it holds no port)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
