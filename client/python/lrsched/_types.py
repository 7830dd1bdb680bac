"""Type aliases of the public API's hints (the package ships py.typed). Hints only: nothing
here is checked at run time, and the adapters accept any object shaped like these."""
from typing import Any, Dict, List, Mapping, MutableMapping, Union

try:
    from typing import Protocol
except ImportError:  # pragma: no cover - Python < 3.8
    Protocol = object  # type: ignore[assignment]

# A scheduler spec in torch's vocabulary (README.md "Spec"): a dict, or its JSON text.
Spec = Union[Mapping[str, Any], str]
# A session's labels.
Labels = Mapping[str, str]
# A state_dict as torch, timm or Megatron writes it.
StateDict = Dict[str, Any]


class Optimizer(Protocol):
    """What the adapters need of an optimizer: torch's, or any object with `param_groups`, a
    list of dicts holding "lr" (and optionally "momentum", "betas", "initial_lr", ...)."""

    param_groups: List[MutableMapping[str, Any]]
