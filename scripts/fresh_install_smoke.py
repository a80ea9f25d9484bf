"""A runtime-only Loadbay install used as a new user would: serve, call each API, run each command.

    python scripts/fresh_install_smoke.py VENV_BIN WORKDIR

VENV_BIN holds the `loadbay` command of a venv made with `pip install .` only (no dev extra).
Standard library only: it must not lean on anything the install under test may lack.
Exits non-zero, naming the step, on the first thing that does not work.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

KEY_LINE = re.compile(r"admin API key \(shown this once, store it now\): (lb_live_\S+)")
INSTANCE_ID = "00000000-0000-4000-8000-000000000001"
INSTANCE = {
    "id": INSTANCE_ID,
    "title": "Fresh machine",
    "source": "MARC",
    "instanceTypeId": "6a1f0ee4-2e0b-4a33-86e5-6f2f34c61a0b",
}
ACTIVITY = {
    "coordinator_id": "coord-1",
    "mentor_id": "mentor-1",
    "activity_type": "group_workshop",
    "activity_date": "2026-03-28",
    "duration_minutes": 60,
}


class SmokeFailure(Exception):
    """A step of the walk-through did not work."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Walkthrough:
    def __init__(self, venv_bin: Path, workdir: Path) -> None:
        self.loadbay = str(venv_bin / "loadbay")
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            key: value for key, value in os.environ.items() if not key.startswith("LOADBAY_")
        }
        self.env["LOADBAY_DATA_DIR"] = str(workdir / "data")
        self.key = ""

    def serve(self, log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            server = subprocess.Popen(
                [self.loadbay, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=self.workdir,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise SmokeFailure(
                    f"loadbay serve exited with {server.returncode}:\n{log.read_text()}"
                )
            try:
                status, body = self.call("GET", "/healthz", auth=False)
                if status == 200 and body["status"] == "ok":
                    return server
            except OSError:
                pass
            time.sleep(0.2)
        server.kill()
        raise SmokeFailure(f"/healthz did not answer within 60 s:\n{log.read_text()}")

    def stop(self, server: subprocess.Popen[bytes], log: Path) -> None:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise SmokeFailure("loadbay serve did not stop within 30 s of SIGTERM") from None
        # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly.
        clean = code in (0, -signal.SIGTERM) and "Application shutdown complete" in log.read_text()
        if not clean:
            raise SmokeFailure(f"loadbay serve exited with {code} on SIGTERM:\n{log.read_text()}")

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        auth: bool = True,
    ) -> tuple[int, Any]:
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if body is not None:
            request.add_header("Content-Type", "application/json")
        if auth:
            request.add_header("Authorization", f"Bearer {self.key}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, payload = error.code, error.read()
        text = payload.decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def expect(self, step: str, status: int, *args: Any, **kwargs: Any) -> Any:
        got, body = self.call(*args, **kwargs)
        if got != status:
            raise SmokeFailure(f"{step}: expected {status}, got {got}: {body}")
        print(f"ok  {step}")
        return body

    def cli(self, step: str, *args: str, extra_env: dict[str, str] | None = None) -> str:
        result = subprocess.run(
            [self.loadbay, *args],
            cwd=self.workdir,
            env={**self.env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise SmokeFailure(f"{step}: exit {result.returncode}\n{result.stdout}{result.stderr}")
        print(f"ok  {step}")
        return result.stdout

    def run(self) -> None:
        first_log = self.workdir / "serve-1.log"
        server = self.serve(first_log)
        try:
            keys = KEY_LINE.findall(first_log.read_text())
            if len(keys) != 1:
                raise SmokeFailure(f"expected the admin key printed once, found {len(keys)}")
            self.key = keys[0]
            print("ok  admin key printed once")
            self.apis()
            self.files_cli()
        finally:
            self.stop(server, first_log)

        second_log = self.workdir / "serve-2.log"
        self.stop(self.serve(second_log), second_log)
        if KEY_LINE.search(second_log.read_text()):
            raise SmokeFailure("a second start printed an admin key again")
        print("ok  restart prints no second admin key")
        self.offline_cli()

    def apis(self) -> None:
        self.expect("anonymous request is 401", 401, "GET", "/api/v1/batch-inserts", auth=False)
        created = self.expect(
            "batch-insert API", 201, "POST", "/api/v1/batch-inserts", {"activities": [ACTIVITY]}
        )
        if created["inserted_count"] != 1:
            raise SmokeFailure(f"batch-insert API did not store the activity: {created}")
        self.expect("batch-insert read back", 200, "GET", f"/api/v1/batch-inserts/{created['id']}")
        self.expect(
            "operator template",
            200,
            "PUT",
            "/operator-data-api/settings",
            {"templateId": "igaming"},
        )
        entities = self.expect(
            "operator entities batch",
            200,
            "POST",
            "/operator-data-api/batch/entities",
            [{"entityType": "player", "externalId": "p1", "data": {"email": "a@example.com"}}],
        )
        if entities["data"]["succeeded"] != 1:
            raise SmokeFailure(f"operator entities batch did not store the entity: {entities}")
        self.expect(
            "files upload",
            201,
            "PUT",
            "/files/in/instances.ndjson",
            raw=json.dumps(INSTANCE).encode() + b"\n",
        )
        bulk = self.expect(
            "instance bulk upsert",
            201,
            "POST",
            "/instance-storage/instances/bulk",
            {"recordsFileName": "in/instances.ndjson"},
        )
        if bulk["errorsNumber"] != 0:
            raise SmokeFailure(f"instance bulk upsert reported errors: {bulk}")
        self.expect("instance read back", 200, "GET", f"/instance-storage/instances/{INSTANCE_ID}")
        self.expect("event feed", 200, "GET", "/events?limit=10")

    def files_cli(self) -> None:
        env = {"LOADBAY_URL": self.url, "LOADBAY_API_KEY": self.key}
        local = self.workdir / "upload.ndjson"
        local.write_text(json.dumps(INSTANCE) + "\n")
        self.cli("loadbay files put", "files", "put", str(local), "in/cli.ndjson", extra_env=env)
        listing = self.cli("loadbay files ls", "files", "ls", "--prefix", "in/", extra_env=env)
        if "in/cli.ndjson" not in listing:
            raise SmokeFailure(f"loadbay files ls does not list the upload:\n{listing}")
        copy = self.workdir / "download.ndjson"
        self.cli("loadbay files get", "files", "get", "in/cli.ndjson", str(copy), extra_env=env)
        if copy.read_text() != local.read_text():
            raise SmokeFailure("loadbay files get returned other bytes than were put")

    def offline_cli(self) -> None:
        self.cli("loadbay --help", "--help")
        self.cli("loadbay migrate", "migrate")
        secret = self.cli(
            "loadbay keys create", "keys", "create", "--tenant", "smoke", "--scope", "read"
        ).strip()
        listing = self.cli("loadbay keys list", "keys", "list", "--tenant", "smoke")
        prefix = listing.split("\t", 1)[0]
        if not secret.startswith(prefix):
            raise SmokeFailure(f"loadbay keys list does not show the new key:\n{listing}")
        self.cli("loadbay keys revoke", "keys", "revoke", prefix)
        self.relay()

    def relay(self) -> None:
        """`loadbay relay` starts, connects and stops on SIGTERM (Redis, which CI has)."""
        env = {**self.env, "LOADBAY_EVENTS_URL": "redis://127.0.0.1:6379/15"}
        relay = subprocess.Popen(
            [self.loadbay, "relay"],
            cwd=self.workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        time.sleep(3)
        if relay.poll() is not None:
            raise SmokeFailure(f"loadbay relay exited early:\n{relay.communicate()[0]}")
        relay.send_signal(signal.SIGTERM)
        output = relay.communicate(timeout=30)[0]
        if relay.returncode != 0 or "relaying events to" not in output:
            raise SmokeFailure(f"loadbay relay exit {relay.returncode}:\n{output}")
        print("ok  loadbay relay")


def main() -> int:
    venv_bin, workdir = Path(sys.argv[1]), Path(sys.argv[2])
    try:
        Walkthrough(venv_bin, workdir).run()
    except SmokeFailure as failure:
        print(f"FRESH INSTALL CHECK FAILED: {failure}", file=sys.stderr)
        return 1
    print("fresh install check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
