"""Runs a real Prefect server and a moto server on loopback for the tests and the local stack.

With --postgres, the Prefect server's database is a PostgreSQL cluster of its own (Debian's packages,
Prefect's recommended production database), created in a temporary directory and removed on exit.

Prints one JSON line on stdout once both are healthy (only moto with --no-prefect; prefectApiUrl is then null):
  {"prefectApiUrl": ..., "motoUrl": ..., "versions": {...}, "prefectHome": ...}
then stays up until its standard input closes (the parent exited, however it exited) or it gets
SIGTERM/SIGINT, and then stops both servers. Tying the lifetime to stdin means a killed test runner
never leaves servers behind.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, name: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"stack: {name} exited with code {proc.returncode} before it was healthy; log:\n{tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status < 500:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"stack: {name} was not healthy at {url} after {timeout:.0f}s; log:\n{tail(log)}")


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def server_version(port: int) -> str:
    """The running server's own version (GET /api/admin/version), for a server from another virtualenv."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/admin/version", timeout=5) as resp:
        return json.loads(resp.read())


def postgres_bindir() -> Path:
    """The newest PostgreSQL server installed from Debian's packages (/usr/lib/postgresql/<major>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    raise SystemExit(
        "stack: --postgres needs PostgreSQL's server programs (initdb, pg_ctl); "
        "install Debian's postgresql package"
    )


class Postgres:
    """A throwaway PostgreSQL cluster on loopback: initdb, start, a `prefect` database; `stop` ends it.

    PostgreSQL refuses to run as root, so as root the cluster is owned and run by the `postgres` user that
    Debian's package creates.
    """

    def __init__(self, home: Path) -> None:
        self.bindir = postgres_bindir()
        self.data = home / "pgdata"
        self.port = free_port()
        self.log = home / "postgres.log"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            import pwd

            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise SystemExit("stack: --postgres as root needs the `postgres` user of Debian's postgresql package")
            self.as_user = ["setpriv", f"--reuid={owner.pw_uid}", f"--regid={owner.pw_gid}", "--init-groups"]
            self.data.mkdir(mode=0o700)
            os.chown(self.data, owner.pw_uid, owner.pw_gid)
            os.chmod(home, 0o755)
            self.log.touch()
            os.chown(self.log, owner.pw_uid, owner.pw_gid)

    def run(self, program: str, *args: str) -> None:
        subprocess.run(
            [*self.as_user, str(self.bindir / program), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            cwd="/",
        )

    def start(self) -> str:
        try:
            self.run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
            # Sized for the benchmark's load; fsync off because the cluster is thrown away after one run.
            options = f"-p {self.port} -h 127.0.0.1 -k {self.data} -c max_connections=200 -c fsync=off"
            self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")
            self.run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "prefect")
        except subprocess.CalledProcessError as exc:
            self.stop()
            raise SystemExit(f"stack: PostgreSQL failed ({exc.cmd[len(self.as_user)]}): {exc.stderr.decode()}\n{tail(self.log)}")
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/prefect"

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                [*self.as_user, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd="/",
            )

    def version(self) -> str:
        out = subprocess.run([str(self.bindir / "postgres"), "--version"], capture_output=True, text=True)
        return out.stdout.split()[2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prefect-port", type=int, default=0)
    parser.add_argument("--moto-port", type=int, default=0)
    parser.add_argument("--ui", action="store_true", help="serve the Prefect UI")
    parser.add_argument("--home", help="PREFECT_HOME to keep (default: a temporary one, removed on exit)")
    parser.add_argument("--no-prefect", action="store_true", help="start only moto (the caller has a Prefect API)")
    parser.add_argument("--postgres", action="store_true", help="the Prefect server on a PostgreSQL of its own")
    parser.add_argument(
        "--prefect-venv",
        help="run the Prefect server from this virtualenv (another server version: scripts/server-venv.sh)",
    )
    args = parser.parse_args()

    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="prefect-ecs-launcher-"))
    home.mkdir(parents=True, exist_ok=True)
    prefect_port = args.prefect_port or free_port()
    moto_port = args.moto_port or free_port()
    bindir = Path(sys.executable).parent
    server_bindir = Path(args.prefect_venv).resolve() / "bin" if args.prefect_venv else bindir

    prefect_env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "true" if args.ui else "false",
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(prefect_port),
        "PREFECT_API_URL": f"http://127.0.0.1:{prefect_port}/api",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    # The Step Functions interpreter inside moto calls back to moto on MOTO_PORT.
    moto_env = {**os.environ, "MOTO_PORT": str(moto_port)}

    postgres = Postgres(home) if args.postgres and not args.no_prefect else None
    if postgres:
        try:
            prefect_env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = postgres.start()
        except SystemExit:
            if not args.home:
                shutil.rmtree(home, ignore_errors=True)
            raise

    prefect_log = home / "prefect-server.log"
    moto_log = home / "moto-server.log"
    procs: list[subprocess.Popen] = []

    def stop(*_: object) -> None:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if postgres:
            postgres.stop()
        if not args.home:
            shutil.rmtree(home, ignore_errors=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    servers: list[tuple[subprocess.Popen, str, Path]] = []
    if not args.no_prefect:
        procs.append(
            subprocess.Popen(
                [str(server_bindir / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(prefect_port)],
                env=prefect_env,
                stdout=prefect_log.open("w"),
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        )
        servers.append((procs[-1], "prefect server", prefect_log))
    procs.append(
        subprocess.Popen(
            [sys.executable, str(HERE / "moto_server.py"), "--port", str(moto_port)],
            env=moto_env,
            stdout=moto_log.open("w"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    )
    servers.append((procs[-1], "moto", moto_log))

    try:
        wait_healthy(f"http://127.0.0.1:{moto_port}/moto-api/", procs[-1], "moto", moto_log, 60)
        if not args.no_prefect:
            wait_healthy(f"http://127.0.0.1:{prefect_port}/api/health", procs[0], "prefect server", prefect_log, 120)
    except SystemExit as exc:
        print(str(exc), file=sys.stderr, flush=True)
        stop()

    import moto
    import prefect

    try:
        import prefect_aws

        prefect_aws_version = prefect_aws.__version__
    except ImportError:
        prefect_aws_version = None

    print(
        json.dumps(
            {
                "prefectApiUrl": None if args.no_prefect else f"http://127.0.0.1:{prefect_port}/api",
                "motoUrl": f"http://127.0.0.1:{moto_port}",
                "prefectHome": str(home),
                "versions": {
                    "prefect": server_version(prefect_port) if args.prefect_venv else prefect.__version__,
                    "prefect-aws": prefect_aws_version,
                    "moto": moto.__version__,
                    "python": sys.version.split()[0],
                    "database": f"PostgreSQL {postgres.version()}" if postgres else "SQLite",
                },
            }
        ),
        flush=True,
    )

    def watch_children() -> None:
        while True:
            for p, name, log in servers:
                if p.poll() is not None:
                    print(f"stack: {name} died with code {p.returncode}; log:\n{tail(log)}", file=sys.stderr, flush=True)
                    stop()
            time.sleep(1)

    threading.Thread(target=watch_children, daemon=True).start()
    # Blocks until the parent closes our stdin or dies.
    sys.stdin.read()
    stop()


if __name__ == "__main__":
    main()
