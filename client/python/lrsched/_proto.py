"""The generated protobuf and gRPC modules (lrsched/v1/lrsched.proto), with a useful error when
they are missing.

They are never committed: `pip install ./client/python` generates them when it builds the
package (client/python/setup.py); for the PYTHONPATH way the CMake build writes them into the
source tree's lrsched/_gen/ (client/python/CMakeLists.txt), so a fresh checkout needs one build.
"""
try:
    from lrsched._gen import lrsched_pb2 as pb
    from lrsched._gen import lrsched_pb2_grpc as pb_grpc
except ImportError as e:  # pragma: no cover - depends on the checkout's state
    if e.name and (e.name.startswith("lrsched") or e.name == "lrsched._gen"):
        raise ImportError(
            "lrsched: the generated gRPC modules (lrsched/_gen/lrsched_pb2*.py) are missing; "
            "install the package (pip install ./client/python generates them) or, for "
            "PYTHONPATH=client/python, build the project first (scripts/build.sh: CMake writes "
            "them from proto/lrsched/v1/lrsched.proto)") from e
    raise ImportError(
        f"lrsched needs grpcio and protobuf ({e}); on Debian use /usr/bin/python3 with "
        "python3-grpcio and python3-protobuf") from e

__all__ = ["pb", "pb_grpc"]
