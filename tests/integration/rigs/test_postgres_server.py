"""The PostgreSQL test fixture: a real server that psycopg reaches over TCP and a Unix socket."""

from __future__ import annotations

import psycopg
import pytest

from tests.postgres_server import PASSWORD_USER, PostgresServer

pytestmark = [pytest.mark.integration]


def test_fresh_database_answers_over_tcp_and_unix_socket(
    postgres_server: PostgresServer, postgres_dsn: str
) -> None:
    """The per-test database is empty and answers both on 127.0.0.1 and on the socket."""
    database = postgres_dsn.rsplit("/", 1)[1]
    with psycopg.connect(postgres_dsn) as conn:
        row = conn.execute("SELECT 1, current_database(), host(inet_server_addr())").fetchone()
        assert row == (1, database, "127.0.0.1")
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()
        assert tables == (0,)
    with psycopg.connect(postgres_server.socket_dsn(database)) as conn:
        # No server address: the connection came through the Unix socket.
        row = conn.execute("SELECT 1, current_database(), inet_server_addr()").fetchone()
        assert row == (1, database, None)


def test_password_role_needs_its_password(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fw_pw gets in with the password from PGPASSWORD and is refused with a wrong one."""
    dsn = postgres_server.dsn("postgres", user=PASSWORD_USER)
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (PASSWORD_USER,)
    monkeypatch.setenv("PGPASSWORD", "not-" + postgres_server.password)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(dsn).close()
    monkeypatch.delenv("PGPASSWORD")
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        psycopg.connect(postgres_server.socket_dsn("postgres", user=PASSWORD_USER)).close()


def test_stop_then_start_keeps_port_and_data(private_postgres: PostgresServer) -> None:
    """After a fast shutdown the server comes back on the same port with the rows it had."""
    server = private_postgres
    server.create_database("kept")
    with psycopg.connect(server.dsn("kept"), autocommit=True) as conn:
        conn.execute("CREATE TABLE t (v text)")
        conn.execute("INSERT INTO t VALUES ('before the stop')")
    port, pid = server.port, server.pid

    server.stop()
    assert not server.running
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(server.dsn("kept"), connect_timeout=2).close()

    server.start()
    assert (server.port, server.running) == (port, True)
    assert server.pid != pid
    with psycopg.connect(server.dsn("kept")) as conn:
        assert conn.execute("SELECT v FROM t").fetchall() == [("before the stop",)]
