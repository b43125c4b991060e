"""`roamclear dev up|status|down` as a user runs it: processes, idempotence, no orphans, and
recovery that restarts only what is dead and destroys nothing it was not asked to."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from pipeline.embedded.processes import free_port, is_alive

pytestmark = pytest.mark.e2e
DEAD_WAIT_S_MAX = 10.0


def _roamclear(home: Path, *args: str, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
    }
    env["ROAMCLEAR_HOME"] = str(home)
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _up(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = _roamclear(home, "dev", "up", *args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result


def _exports(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """The variables of `export NAME='value'` lines; nothing else may be on stdout."""
    exports = {}
    for line in result.stdout.splitlines():
        assert line.startswith("export "), f"not an export on stdout: {line!r}"
        name, _, value = line.removeprefix("export ").partition("=")
        exports[name] = value.strip("'")
    return exports


def _status(home: Path) -> tuple[int, dict[str, object]]:
    result = _roamclear(home, "dev", "status", "--json")
    return result.returncode, json.loads(result.stdout)


def _state(home: Path) -> dict[str, object]:
    state: dict[str, object] = json.loads((home / "dev.json").read_text())
    return state


def _write_state(home: Path, **changes: object) -> None:
    state = _state(home) | changes
    (home / "dev.json").write_text(json.dumps(state))


def _postmaster_pid(home: Path) -> int:
    return int((home / "pgdata" / "postmaster.pid").read_text().split("\n", 1)[0])


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + DEAD_WAIT_S_MAX
    while is_alive(pid):
        assert time.monotonic() < deadline, f"pid {pid} survived SIGKILL"
        time.sleep(0.05)


@contextmanager
def _unrelated_process() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that roamclear did not start, to hand its pid to a stale dev.json."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def home() -> Iterator[Path]:
    """A ROAMCLEAR_HOME whose stack is stopped after the test, whatever happened.

    Not under pytest's tmp_path: as root, PostgreSQL runs as the user `pgserver`, which must
    traverse the parent directories, and every pytest session that starts on this machine
    makes /tmp/pytest-of-<user> private again."""
    home = Path(tempfile.mkdtemp(prefix="roamclear-dev-")) / "home"
    try:
        yield home
    finally:
        down = _roamclear(home, "dev", "down")
        shutil.rmtree(home.parent, ignore_errors=True)
        assert down.returncode == 0, down.stderr


def test_up_status_down_leaves_nothing_running(home: Path) -> None:
    first = _up(home)
    exports = _exports(first)
    assert exports["KAFKA_BOOTSTRAP_SERVERS"].startswith("127.0.0.1:")
    assert exports["DATABASE_URL"].startswith("postgresql://")
    assert _mode(home / "dev.json") == 0o600
    assert _mode(home / "dev.lock") == 0o600

    second = _up(home)
    assert "already running" in second.stderr
    assert second.stdout == first.stdout

    code, report = _status(home)
    assert code == 0
    assert report["running"] is True
    broker, postgres = report["broker"], report["postgres"]
    assert isinstance(broker, dict) and isinstance(postgres, dict)
    assert broker["health"] == postgres["health"] == "running"
    pids = [broker["pid"], postgres["pid"]]
    assert all(isinstance(pid, int) and is_alive(pid) for pid in pids)
    down = _roamclear(home, "dev", "down")
    assert down.returncode == 0, down.stderr
    assert not any(is_alive(pid) for pid in pids)  # type: ignore[arg-type]
    code, after = _status(home)
    assert code == 1
    assert after["running"] is False


def test_up_restarts_a_dead_postgresql_on_its_data_and_keeps_the_live_broker(
    home: Path,
) -> None:
    exports = _exports(_up(home))
    broker_pid = _state(home)["broker_pid"]
    with psycopg.connect(exports["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (n int)")
        conn.execute("INSERT INTO kept VALUES (42)")
    _kill(_postmaster_pid(home))

    code, report = _status(home)
    assert code == 1
    assert report["postgres"]["health"] == "dead"  # type: ignore[index]
    assert report["broker"]["health"] == "running"  # type: ignore[index]

    again = _up(home)
    assert _exports(again) == exports
    assert _state(home)["broker_pid"] == broker_pid
    assert is_alive(broker_pid)  # type: ignore[arg-type]
    with psycopg.connect(exports["DATABASE_URL"]) as conn:
        assert conn.execute("SELECT n FROM kept").fetchall() == [(42,)]
    assert _status(home)[0] == 0


def test_up_replaces_a_dead_broker_keeps_the_database_and_only_reset_empties_it(
    home: Path,
) -> None:
    exports = _exports(_up(home))
    with psycopg.connect(exports["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (n int)")
        conn.execute("INSERT INTO kept VALUES (42)")
    old_broker = _state(home)["broker_pid"]
    assert isinstance(old_broker, int)
    _kill(old_broker)

    again = _up(home)
    new_broker = _state(home)["broker_pid"]
    assert new_broker != old_broker and is_alive(new_broker)  # type: ignore[arg-type]
    assert "events the old one held are gone" in again.stderr
    assert "was kept" in again.stderr
    with psycopg.connect(exports["DATABASE_URL"]) as conn:
        assert conn.execute("SELECT n FROM kept").fetchall() == [(42,)]

    _up(home, "--reset")
    with psycopg.connect(exports["DATABASE_URL"]) as conn:
        assert conn.execute("SELECT to_regclass('kept')").fetchone() == (None,)
        assert conn.execute("SELECT to_regclass('raw_event')").fetchone() != (None,)
    assert _status(home)[0] == 0


def test_status_and_up_check_the_real_processes_not_the_stored_pids(home: Path) -> None:
    """Both servers die and their pids now belong to an unrelated live process: status must
    call them dead, and up must start new ones without signalling that process."""
    _up(home)
    with _unrelated_process() as unrelated:
        _kill(_postmaster_pid(home))
        _kill(_state(home)["broker_pid"])  # type: ignore[arg-type]
        _write_state(home, broker_pid=unrelated.pid, postgres_pid=unrelated.pid)

        code, report = _status(home)
        assert code == 1
        assert report["running"] is False
        assert report["broker"]["health"] == "dead"  # type: ignore[index]
        assert report["postgres"]["health"] == "dead"  # type: ignore[index]

        _up(home)
        assert _status(home)[0] == 0
        assert unrelated.poll() is None, "dev up signalled a process it did not start"
        assert _roamclear(home, "dev", "down").returncode == 0
        assert unrelated.poll() is None, "dev down signalled a process it did not start"


def test_a_closed_broker_port_is_dead_even_when_its_pid_lives(home: Path) -> None:
    _up(home)
    _kill(_state(home)["broker_pid"])  # type: ignore[arg-type]
    with _unrelated_process() as unrelated:
        closed = f"127.0.0.1:{free_port()}"
        _write_state(home, broker_pid=unrelated.pid, bootstrap_servers=closed)
        code, report = _status(home)
        assert code == 1
        assert report["broker"]["health"] == "dead"  # type: ignore[index]
        assert report["postgres"]["health"] == "running"  # type: ignore[index]
        assert _roamclear(home, "dev", "down").returncode == 0
        assert unrelated.poll() is None, "dev down signalled a process it did not start"


def test_a_postgresql_that_will_not_start_is_an_error_naming_its_log(home: Path) -> None:
    _up(home)
    _kill(_postmaster_pid(home))
    with (home / "pgdata" / "postgresql.conf").open("a") as conf:
        conf.write("\nthis line is not a setting\n")
    failed = _roamclear(home, "dev", "up")
    assert failed.returncode == 1
    assert "Traceback" not in failed.stderr
    assert str(home / "pgdata" / "log") in failed.stderr.replace("\n", "")
    assert failed.stdout == ""


def test_a_configured_password_is_never_shown_or_stored(
    home: Path, database_url: str, kafka_bootstrap: str, topic_prefix: str
) -> None:
    parts = urlsplit(database_url)
    secret = parts.password or "not-for-your-eyes-7734"
    if not parts.password:  # the embedded server trusts local users and ignores it
        user, host = parts.username or "postgres", parts.netloc.rpartition("@")[2]
        database_url = urlunsplit(parts._replace(netloc=f"{user}:{secret}@{host}"))
    env = {
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "ROAMCLEAR_TOPIC_PREFIX": topic_prefix,
    }
    up = _roamclear(home, "dev", "up", **env)
    assert up.returncode == 0, up.stderr
    human = _roamclear(home, "dev", "status", **env)
    machine = _roamclear(home, "dev", "status", "--json", **env)
    assert human.returncode == machine.returncode == 0, human.stdout
    for result in (up, human, machine):
        assert secret not in result.stdout + result.stderr
    assert "***" in human.stdout
    for name in ("dev.json", "dev.lock"):
        if (home / name).exists():
            assert secret not in (home / name).read_text()
            assert _mode(home / name) == 0o600
