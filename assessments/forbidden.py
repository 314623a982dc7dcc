"""Guarding "from scratch": run our code with torch's own twins patched to raise.

Parity with `F.scaled_dot_product_attention` or `nn.LSTM` proves our numbers are right, but it
would also pass if our module simply called the torch function it claims to reimplement.
`forbid(...)` replaces each named attribute (e.g. `torch.nn.functional.scaled_dot_product_attention`,
`torch.nn.LSTM.forward`) with a function that raises `TwinCalled`, and also replaces every alias
of the same object bound in the given modules' namespaces (`from torch.nn.functional import
scaled_dot_product_attention as sdpa` at import time would otherwise escape the patch). Everything
is restored on exit. Tests compute their reference before entering, then rerun inside and compare.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType


class TwinCalled(AssertionError):
    """Our "from scratch" code reached the library function it claims to reimplement."""


def resolve(dotted: str) -> tuple[object, str, object]:
    """'torch.nn.LSTM.forward' -> (torch.nn.LSTM, 'forward', the function)."""
    parts = dotted.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            owner: object = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:-1]:
            owner = getattr(owner, name)
        return owner, parts[-1], getattr(owner, parts[-1])
    raise ValueError(f"cannot resolve {dotted!r} to an attribute of an importable module")


def package_modules(package: str) -> list[ModuleType]:
    """The package and every submodule under it, imported."""
    root = importlib.import_module(package)
    mods = [root]
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        mods.append(importlib.import_module(info.name))
    return mods


def _raiser(dotted: str):
    def twin(*args, **kwargs):
        raise TwinCalled(f"{dotted} was called: the 'from scratch' implementation must not use it")
    return twin


@contextmanager
def forbid(twins: Sequence[str], modules: Sequence[ModuleType] = ()) -> Iterator[list[str]]:
    """Patch every dotted name in `twins` (and its aliases in `modules`) to raise TwinCalled.
    Yields the names actually patched (all of them; a name that does not resolve is an error)."""
    saved: list[tuple[object, str, object]] = []
    originals = {}
    try:
        for dotted in twins:
            owner, name, original = resolve(dotted)
            originals[id(original)] = dotted
            saved.append((owner, name, original))
            setattr(owner, name, _raiser(dotted))
        for mod in modules:
            for name, value in list(vars(mod).items()):
                if id(value) in originals:
                    saved.append((mod, name, value))
                    setattr(mod, name, _raiser(originals[id(value)]))
        yield list(twins)
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)
        assert all(getattr(o, n) is f for o, n, f in saved)


def forward_backward(fn: Callable[[], object], leaves: dict[str, object], seed: int = 0) -> dict[str, object]:
    """Run `fn()` (a tensor or a tuple/list of tensors), backpropagate a fixed random linear
    functional of its floating outputs, and return {"out<i>": output, "grad_<name>": grad} for
    every tensor in `leaves` (parameters or inputs with requires_grad). Deterministic for a seed,
    so a run inside `forbid` can be compared with one outside."""
    import torch

    for leaf in leaves.values():
        leaf.grad = None
    out = fn()
    outs = [out] if isinstance(out, torch.Tensor) else [t for t in out if isinstance(t, torch.Tensor)]
    g = torch.Generator().manual_seed(seed)
    loss = sum((t * torch.randn(t.shape, generator=g, dtype=t.dtype)).sum() for t in outs if t.is_floating_point())
    loss.backward()
    res = {f"out{i}": t.detach().clone() for i, t in enumerate(outs)}
    res.update({f"grad_{n}": leaf.grad.clone() for n, leaf in leaves.items() if leaf.grad is not None})
    return res


def max_difference(a: dict[str, object], b: dict[str, object]) -> float:
    """Worst |a[k] - b[k]| over the same keys (NaN counts as infinite)."""
    import torch

    if a.keys() != b.keys():
        raise AssertionError(f"different results: {sorted(a)} vs {sorted(b)}")
    worst = 0.0
    for k in a:
        d = (a[k].double() - b[k].double()).abs()
        worst = max(worst, float("inf") if torch.isnan(d).any() else float(d.max()) if d.numel() else 0.0)
    return worst


def blocked_import_script(blocked: Sequence[str], body: str) -> str:
    """A Python script that makes `import X` fail for every X in `blocked` (sys.modules[X] = None)
    before running `body`; for checking that a package imports none of them."""
    lines = ["import sys"] + [f"sys.modules[{name!r}] = None" for name in blocked] + [body]
    return "\n".join(lines)


STDLIB = frozenset(sys.stdlib_module_names)
