"""lrsched: PyTorch learning-rate schedules served as named, durable sessions.

    import lrsched
    with lrsched.Client("127.0.0.1:50051") as c:
        s = c.create_session("run-1", {"optimizer": {"type": "SGD", "param_groups": [{"lr": 0.1}]},
                                       "scheduler": {"type": "StepLR", "step_size": 10}})
        c.step("run-1", if_epoch=s.last_epoch)

    from lrsched.torch import RemoteLRScheduler   # torch-style scheduler; torch not required
    from lrsched.megatron import RemoteOptimizerParamScheduler   # Megatron-LM's scheduler

`Client` methods return the dataclasses of `lrsched.values` and raise `LrschedError`
subclasses (`lrsched.NotFound`, ...) carrying the gRPC status `code` and `details`.
The gRPC modules (lrsched/_gen/) are generated when the package is built (`pip install
./client/python`), or by the CMake build for the PYTHONPATH way (see README.md).
"""
from lrsched.errors import (Aborted, AlreadyExists, Cancelled, DeadlineExceeded,
                            FailedPrecondition, Internal, InvalidArgument, LrschedError, NotFound,
                            PermissionDenied, ResourceExhausted, Unauthenticated, Unavailable,
                            Unimplemented)
from lrsched.client import DEFAULT_TARGET, Client
from lrsched._resume import ResumeWarning
from lrsched.values import (EpochValues, ExportedState, GroupValues, LRValues, Session,
                            SimulateResult, StepResult)
# Imports no torch; makes `lrsched.torch.RemoteLRScheduler` reachable after `import lrsched`.
from lrsched import torch  # noqa: E402,F401  (the submodule lrsched.torch, not torch itself)
from lrsched import megatron  # noqa: E402,F401  (Megatron-LM's OptimizerParamScheduler)

from lrsched._version import __version__  # noqa: E402  (pyproject.toml reads it there)

__all__ = [
    "Client", "DEFAULT_TARGET", "LrschedError", "Aborted", "AlreadyExists", "Cancelled",
    "DeadlineExceeded", "FailedPrecondition", "Internal", "InvalidArgument", "NotFound",
    "PermissionDenied", "ResourceExhausted", "Unauthenticated", "Unavailable", "Unimplemented",
    "EpochValues", "ExportedState", "GroupValues", "LRValues", "Session", "SimulateResult",
    "StepResult", "ResumeWarning", "__version__",
]
