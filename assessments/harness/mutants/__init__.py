"""A catalogue of realistic wrong implementations, and the means to plant one.

Each `Mutant` names one function or method of `implementations/` (its `target`), a wrong version of
it written the way a person would get it wrong (Adam without bias correction, a softmax without
the max subtracted, an LSTM output gate through tanh...), and the few assessment tests that must
catch it. `planted(mutant)` swaps the wrong body in for the duration of a `with` block: the
function's `__code__` is replaced, so every reference to it (a `from x import f`, a
`__call__ = forward` alias, a parametrize list holding the function) runs the wrong code; no
source file is touched. The wrong body runs with the original's globals, so it may use any name
the target module defines. A class attribute that is not a function is set and restored instead.

`python -m assessments.harness.mutants` runs the catalogue (see __main__.py);
assessments/harness/test_mutants.py runs that in CI and asserts every mutant is caught.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Mutant:
    name: str
    area: str
    bug: str                       # what is wrong, in a sentence
    target: str                    # "package.module:Class.attr" or "package.module:function"
    wrong: Callable[..., Any] | Any  # the wrong body (a function), or a wrong attribute value
    tests: tuple[str, ...]         # node ids of the tests that must fail with it planted
    needs: tuple[str, ...] = field(default=("torch",))  # importable modules the tests need

    def missing(self) -> list[str]:
        """The modules in `needs` that this environment lacks (the mutant is then not run)."""
        return [m for m in self.needs if not _importable(m)]


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def _resolve(target: str) -> tuple[Any, str]:
    module_name, _, path = target.partition(":")
    if not path:
        raise ValueError(f"target must be 'module:attr', got {target!r}")
    owner: Any = importlib.import_module(module_name)
    *parents, attr = path.split(".")
    for name in parents:
        owner = getattr(owner, name)
    if attr not in vars(owner):
        raise ValueError(f"{target}: {owner!r} defines no {attr!r} itself (patch where it is defined)")
    return owner, attr


def _function(value: Any) -> types.FunctionType | None:
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    return value if isinstance(value, types.FunctionType) else None


def _arguments(func: types.FunctionType) -> tuple[str, ...]:
    code = func.__code__
    return code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]


@contextmanager
def planted(mutant: Mutant) -> Iterator[None]:
    """Run the block with `mutant.wrong` in place of its target; restore it afterwards."""
    owner, attr = _resolve(mutant.target)
    original = inspect.getattr_static(owner, attr)
    func = _function(original)
    if func is None:  # a plain attribute (a flag, a constant)
        setattr(owner, attr, mutant.wrong)
        try:
            yield
        finally:
            setattr(owner, attr, original)
        return
    wrong = mutant.wrong
    if not isinstance(wrong, types.FunctionType):
        raise TypeError(f"{mutant.name}: the wrong version of a function must be a function, got {wrong!r}")
    if wrong.__code__.co_freevars != func.__code__.co_freevars:
        raise TypeError(f"{mutant.name}: {mutant.target} and its wrong version must close over the same names")
    if _arguments(wrong) != _arguments(func):
        raise TypeError(f"{mutant.name}: the wrong version takes {_arguments(wrong)}, "
                        f"{mutant.target} takes {_arguments(func)}")
    saved = func.__code__
    func.__code__ = wrong.__code__
    try:
        yield
    finally:
        func.__code__ = saved


def catalogue() -> list[Mutant]:
    from assessments.harness.mutants.architectures import MUTANTS as ARCHITECTURES
    from assessments.harness.mutants.frameworks import MUTANTS as FRAMEWORKS
    from assessments.harness.mutants.fundamentals import MUTANTS as FUNDAMENTALS
    from assessments.harness.mutants.optimization import MUTANTS as OPTIMIZATION

    mutants = OPTIMIZATION + FUNDAMENTALS + ARCHITECTURES + FRAMEWORKS
    names = [m.name for m in mutants]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"mutant names must be unique: {duplicated}")
    return mutants
