"""Fixtures shared by the Python client's tests: one real lrsched-server per test module
(pyclient_server.Server: 127.0.0.1, a free port, stopped at the module's end) and a Client on it.
A module that needs another server (other flags, its own lifecycle) defines its own `server`."""
import pytest


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    from pyclient_server import Server, free_port  # only modules that skip without binaries use it
    s = Server(tmp_path_factory.mktemp(request.module.__name__), free_port()).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def client(server):
    import lrsched
    with lrsched.Client(server.address, retry_timeout=5.0) as c:
        yield c
