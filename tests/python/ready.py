"""Waiting for a process a test started (lrsched-server, etcd) until it answers.

A log line ("event=listening") or a sleep says little on a loaded machine: the process may not
take calls yet, and a test's first call then fails (UNAVAILABLE "tcp handshaker shutdown").
wait_until_healthy() instead asks the standard gRPC health service (grpc.health.v1.Health/Check,
which lrsched-server and etcd both serve) until it answers SERVING, within one bounded total
wait (READY_TIMEOUT), and gives up at once if the process exits.

Used by every test that starts such a process (test_server_process, test_python_client,
pyclient_server, test_auth_process, test_soak, test_etcd_process). Needs python3-grpcio only (no generated code:
the request and the reply are encoded by hand).
"""
import time

import grpc

READY_TIMEOUT = 30.0  # seconds: generous, for a loaded 2-core machine
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
# HealthCheckResponse{status: SERVING}: field 1 (varint) = 1. The request (service "") is empty.
SERVING = b"\x08\x01"


def wait_until_healthy(addr, proc=None, deadline=None, credentials=None, log=None, what=None):
    """Returns once `addr` (HOST:PORT) answers a health check with SERVING.

    proc: the process (subprocess.Popen) serving it; its exit ends the wait at once.
    deadline: time.monotonic() value to give up at (default: READY_TIMEOUT from now).
    credentials: grpc.ChannelCredentials for a TLS server (default: plain text).
    log: a callable returning the process's log, for the failure message.
    Raises AssertionError naming the last answer when the process exits or time runs out.
    """
    if deadline is None:
        deadline = time.monotonic() + READY_TIMEOUT
    what = what or f"the process at {addr}"
    last = "no answer yet"
    while True:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what} exited (code {proc.returncode}) before it answered a "
                                 f"health check; last: {last}\n{log() if log else ''}")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"{what} did not answer a health check with SERVING in time; "
                                 f"last: {last}\n{log() if log else ''}")
        # A fresh channel per probe: a reused channel's reconnect backoff (1 s, growing to
        # minutes) would stretch the wait long after the process is up.
        channel = (grpc.secure_channel(addr, credentials) if credentials is not None
                   else grpc.insecure_channel(addr))
        try:
            check = channel.unary_unary(HEALTH_CHECK)
            reply = check(b"", timeout=min(2.0, remaining), wait_for_ready=True)
            if reply == SERVING:
                return
            last = f"status bytes {reply!r}"
        except grpc.RpcError as e:
            last = f"{e.code().name}: {e.details()}"
        finally:
            channel.close()
        time.sleep(0.05)
