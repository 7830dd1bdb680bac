"""Exceptions raised by the lrsched client: one class per gRPC status code the service uses.

Every failed RPC surfaces as an `LrschedError` (or a subclass) carrying the status `code`
(a `grpc.StatusCode`) and the server's message in `details`, which names the offending field
for INVALID_ARGUMENT. Subclasses let callers catch what they can handle (`except NotFound`)
and also derive from the matching builtin (`InvalidArgument` is a `ValueError`, as torch's
refusal of a configuration is), so torch-style code that catches builtins keeps working.
"""
from __future__ import annotations

from typing import Optional

import grpc

__all__ = [
    "LrschedError", "Cancelled", "InvalidArgument", "DeadlineExceeded", "NotFound",
    "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted",
    "Unimplemented", "Internal", "Unavailable", "Unauthenticated", "from_rpc_error",
]


class LrschedError(Exception):
    """A failed lrsched RPC: `code` is the grpc.StatusCode, `details` the server's message."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN
    details: str

    def __init__(self, details: str = "", code: Optional[grpc.StatusCode] = None) -> None:
        if code is not None:
            self.code = code
        self.details = details or ""
        super().__init__(f"{self.code.name}: {self.details}")


class Cancelled(LrschedError):
    code = grpc.StatusCode.CANCELLED


class InvalidArgument(LrschedError, ValueError):
    """The request (usually the spec) is malformed or refused; `details` names the field."""
    code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(LrschedError, TimeoutError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFound(LrschedError, LookupError):
    """No session of that name (or it was deleted while watched)."""
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(LrschedError):
    """The name is taken by a session with a different spec (or labels)."""
    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(LrschedError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(LrschedError):
    """A server limit: number of sessions, simulate steps, watchers, message size."""
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(LrschedError):
    """The session's state does not allow the request: a step torch refuses (OneCycleLR past
    total_steps, a lambda that raises), lookahead on ReduceLROnPlateau, a stale if_revision."""
    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(LrschedError):
    code = grpc.StatusCode.ABORTED


class Unimplemented(LrschedError, NotImplementedError):
    code = grpc.StatusCode.UNIMPLEMENTED


class Internal(LrschedError):
    code = grpc.StatusCode.INTERNAL


class Unavailable(LrschedError, ConnectionError):
    """The server cannot be reached (or is shutting down); retry-safe calls were retried."""
    code = grpc.StatusCode.UNAVAILABLE


class Unauthenticated(LrschedError):
    code = grpc.StatusCode.UNAUTHENTICATED


_BY_CODE = {cls.code: cls for cls in (
    Cancelled, InvalidArgument, DeadlineExceeded, NotFound, AlreadyExists, PermissionDenied,
    ResourceExhausted, FailedPrecondition, Aborted, Unimplemented, Internal, Unavailable,
    Unauthenticated)}


def from_rpc_error(err: grpc.RpcError) -> LrschedError:
    """The LrschedError for a grpc.RpcError (a grpc.Call: it has code() and details())."""
    code = err.code() if callable(getattr(err, "code", None)) else grpc.StatusCode.UNKNOWN
    details = err.details() if callable(getattr(err, "details", None)) else str(err)
    cls = _BY_CODE.get(code, LrschedError)
    if cls is LrschedError:
        return LrschedError(details, code=code)
    return cls(details)
