"""A TCP proxy to a PostgreSQL server (over TCP or its Unix socket), for tests of what
syncq does when the network under its connections fails."""

from __future__ import annotations

import select
import socket
import threading


class StallingProxy:
    """A TCP proxy to PostgreSQL whose connections open so far can be made to go silent:
    nothing more is forwarded either way, and their sockets stay open (a stalled proxy or
    a network gone dark, which TCP does not report for a long while)."""

    def __init__(self, host: str, port: int, listen_port: int = 0) -> None:
        """To the server at `host` (a name, or its socket directory) and `port`; listening
        on `listen_port` (0: one the OS chooses)."""
        self._server = socket.create_server(("127.0.0.1", listen_port))
        self.port = self._server.getsockname()[1]
        self._host, self._target_port = host, port
        self._silenced: list[threading.Event] = []
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def silence_open_connections(self) -> None:
        for silent in self._silenced:
            silent.set()

    def close(self) -> None:
        self.silence_open_connections()  # the pumps stop before their sockets close
        self._server.close()
        for sock in self._sockets:
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = self._connect_upstream()
            except OSError:
                client.close()
                return
            silent = threading.Event()
            self._sockets += [client, upstream]
            self._silenced.append(silent)
            threading.Thread(
                target=self._pump, args=(client, upstream, silent), daemon=True
            ).start()

    def _connect_upstream(self) -> socket.socket:
        if self._host.startswith("/"):  # the server's socket directory
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(f"{self._host}/.s.PGSQL.{self._target_port}")
            return upstream
        return socket.create_connection((self._host, self._target_port))

    @staticmethod
    def _pump(client: socket.socket, upstream: socket.socket, silent: threading.Event) -> None:
        try:
            while not silent.is_set():
                for sock in select.select([client, upstream], [], [], 0.1)[0]:
                    if silent.is_set():  # silenced while waiting: forward nothing more
                        return
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is client else client).sendall(data)
        except (OSError, ValueError):  # a socket closed under it (ValueError: select's fd -1)
            return
