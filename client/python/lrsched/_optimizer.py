"""The spec of an lrsched session read from a torch-style optimizer (any object whose
`param_groups` is a list of dicts): the optimizer's type, each group's values as JSON numbers.
Shared by the adapters (lrsched.torch, lrsched.timm, lrsched.megatron); torch is not imported.
"""
import json

# torch 1.13 optimizers whose param groups lrsched models (see README.md "Spec").
OPTIMIZER_TYPES = ("SGD", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop", "Adagrad",
                   "Adadelta", "ASGD", "Rprop")

# Param-group keys torch's schedulers read. The OneCycleLR ones appear in a group restored from
# a checkpoint, and torch reads them back on resume, so they belong to the spec as well; so do
# Megatron's per-group overrides (start_wd, end_wd, wd_mult; never in a torch optimizer's
# groups). weight_decay is not: every torch group has one, no torch scheduler reads it.
_FLOAT_KEYS = ("lr", "initial_lr", "momentum", "max_lr", "min_lr", "max_momentum",
               "base_momentum", "start_wd", "end_wd", "wd_mult")


def _number(v):
    """A group value as a JSON number: tensors (newer torch allows a tensor lr) become floats;
    Python ints and floats pass unchanged, so the spec carries exactly the user's values."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v
    item = getattr(v, "item", None)
    return item() if callable(item) else float(v)


def _param_groups(optimizer):
    groups = getattr(optimizer, "param_groups", None)
    if not isinstance(groups, (list, tuple)) or not groups or not all(
            hasattr(g, "__getitem__") and hasattr(g, "__contains__") for g in groups):
        raise TypeError("RemoteLRScheduler: the optimizer needs `param_groups`, a non-empty "
                        "list of dicts (as torch.optim optimizers have)")
    return groups


def _optimizer_type(optimizer, groups):
    """torch's class name for the optimizer: the first lrsched knows in its class hierarchy
    (a subclass of torch.optim.SGD is an SGD); for other objects, inferred from the groups:
    "betas" means the Adam family, otherwise SGD."""
    for cls in type(optimizer).__mro__:
        if cls.__name__ in OPTIMIZER_TYPES:
            return cls.__name__
    return "Adam" if any("betas" in g for g in groups) else "SGD"


def _group_spec(group):
    out = {}
    for key in _FLOAT_KEYS:
        if key in group and group[key] is not None:
            out[key] = _number(group[key])
    if "betas" in group and group["betas"] is not None:
        out["betas"] = [_number(b) for b in group["betas"]]
    return out


def build_spec(optimizer, scheduler, *, optimizer_type=None):
    """The session spec for `optimizer` (its param groups now) driven by `scheduler` (a
    torch-style dict: {"type": "CosineAnnealingLR", "T_max": 40, ...})."""
    if not isinstance(scheduler, dict) or not isinstance(scheduler.get("type"), str):
        raise TypeError('RemoteLRScheduler: scheduler must be a dict with a "type", e.g. '
                        '{"type": "CosineAnnealingLR", "T_max": 40}')
    groups = _param_groups(optimizer)
    spec = {"optimizer": {"type": optimizer_type or _optimizer_type(optimizer, groups),
                          "param_groups": [_group_spec(g) for g in groups]},
            "scheduler": scheduler}
    try:
        # Round trip through JSON: tuples become lists, and anything JSON cannot carry (a
        # Python lambda where the API takes an expression string) is refused here, clearly.
        return json.loads(json.dumps(spec, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise TypeError(f"RemoteLRScheduler: the spec must be plain JSON (lambdas as Python "
                        f"expression strings such as \"0.95 ** epoch\", finite numbers): {e}") \
            from None
