"""Every notebook in notebooks/ (jupytext percent scripts, one per area) runs top to bottom in
a Jupyter kernel of this interpreter at the run's budget, and is rendered to a self-contained
HTML page at `<run-dir>/notebooks/<area>.html` (images embedded, nothing fetched from a network).

Each notebook asserts on its own numbers, so a broken implementation fails its notebook here.
Settings: experiments/notebooks.toml, read by the notebooks through MILESTONE_BUDGET.
"""
from __future__ import annotations

import importlib.util
import json
import re
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
AREAS = sorted(p.stem for p in NOTEBOOKS.glob("*.py"))
KERNEL = "milestone-venv"
CELL_TIMEOUT_S = 300
# What a notebook imports beyond torch and the notebooks extra: a tox env without it (torch) skips
# that notebook, naming what is missing, as the area's own tests skip without their extra.
NEEDS = {"keras": ("keras", "tensorflow"), "huggingface": ("transformers", "onnx", "onnxruntime")}

pytestmark = [pytest.mark.notebooks, pytest.mark.torch]

# What a browser would fetch from elsewhere: a tag with src/href=http(s)://... or //..., or a
# script whose code loads a URL (nbconvert's lab template imports mermaid from a CDN).
REMOTE_TAG = re.compile(r"""<(?:script|link|img|iframe)\b[^>]*?\b(?:src|href)\s*=\s*["']?(?:https?:)?//[^>]*>""",
                        re.IGNORECASE)
SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.IGNORECASE | re.DOTALL)
URL_IN_CODE = re.compile(r"""["'`](?:https?:)?//""")
CSS_URL = re.compile(r"""(?:url\(\s*["']?|@import\s+["']?)(?:https?:)?//""", re.IGNORECASE)


def remote_fetches(html: str) -> list[str]:
    """The tags and scripts of `html` that would make a browser reach the network."""
    found = [m[0] for m in REMOTE_TAG.finditer(html)]
    found += [m[0] for m in SCRIPT.finditer(html) if URL_IN_CODE.search(m[0])]
    return found + [html[m.start():m.start() + 120] for m in CSS_URL.finditer(html)]


def strip_remote(html: str) -> str:
    """Drop what loads from a network: nbconvert's lab template links require.js and MathJax
    and imports mermaid from a CDN; executed notebooks without widgets, LaTeX or diagrams need
    none of them, and the report must work offline."""
    html = SCRIPT.sub(lambda m: "" if REMOTE_TAG.search(m[0]) or URL_IN_CODE.search(m[0]) else m[0], html)
    return REMOTE_TAG.sub("", html)


@pytest.fixture(scope="module")
def jupyter_env(tmp_path_factory, monkeypatch_module) -> str:
    """A private kernelspec that starts this interpreter (the project venv), and private
    Jupyter/IPython folders so nothing outside the test's temporary folder is touched."""
    base = tmp_path_factory.mktemp("jupyter")
    spec = base / "data" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "milestone (.venv)", "language": "python"}))
    monkeypatch_module.setenv("JUPYTER_PATH", str(base / "data"))
    monkeypatch_module.setenv("JUPYTER_RUNTIME_DIR", str(base / "runtime"))
    monkeypatch_module.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch_module.setenv("IPYTHONDIR", str(base / "ipython"))
    # the harness sets MPLBACKEND=Agg for tests; the kernel must draw inline
    monkeypatch_module.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    return KERNEL


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_every_notebook_is_a_percent_script():
    """notebooks/ holds one jupytext percent script per area, without stored outputs."""
    import jupytext

    assert {"fundamentals", "cnn", "rnn", "transformers"} <= set(AREAS), AREAS
    for area in AREAS:
        text = (NOTEBOOKS / f"{area}.py").read_text()
        nb = jupytext.reads(text, fmt="py:percent")
        assert nb.cells[0].cell_type == "markdown", f"{area}: start with a markdown introduction"
        assert sum(c.cell_type == "code" for c in nb.cells) >= 3, f"{area}: too few code cells"
        assert any("assert " in c.source for c in nb.cells if c.cell_type == "code"), \
            f"{area}: a notebook must assert on its numbers"
        assert "http://" not in text and "https://" not in text, f"{area}: no network links (offline report)"


@pytest.mark.parametrize("area", AREAS)
def test_notebook_runs_and_renders(area, jupyter_env, budget, request, monkeypatch, evidence):
    missing = [m for m in NEEDS.get(area, ()) if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"the {area} notebook needs {', '.join(missing)}, not installed in this environment")
    import jupytext
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    monkeypatch.setenv("MILESTONE_BUDGET", budget)
    nb = jupytext.read(NOTEBOOKS / f"{area}.py", fmt="py:percent")
    nb.metadata["kernelspec"] = {"name": jupyter_env, "display_name": "milestone (.venv)", "language": "python"}
    client = NotebookClient(nb, kernel_name=jupyter_env, timeout=CELL_TIMEOUT_S,
                            resources={"metadata": {"path": str(ROOT)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError with the failing cell's traceback
    seconds = time.perf_counter() - start

    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    pngs = [[o["data"]["image/png"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
            for c in nb.cells if c.cell_type == "code"]
    images = sum(map(len, pngs))
    html, _ = HTMLExporter(template_name="lab", embed_images=True).from_notebook_node(nb)
    assert remote_fetches(html), "the remote-fetch detector must see nbconvert's CDN scripts"
    html = strip_remote(html)
    out = Path(request.config.getoption("--run-dir")).resolve() / "notebooks" / f"{area}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")

    evidence.metric("execution_time", seconds, unit="s", key=True)
    evidence.metric("figures", images)
    evidence.text(f"notebooks/{area}.py executed at budget {budget!r} in a kernel of {sys.executable}; "
                  f"rendered to notebooks/{area}.html in the run folder.")
    assert not errors
    assert images >= 2, f"{area}: expected its figures as inline PNGs, got {images}"
    assert all(len(set(cell)) == len(cell) for cell in pngs), f"{area}: a figure is shown twice"
    assert html.count("data:image/png;base64,") >= images
    assert not remote_fetches(html), f"{area}.html still loads from the network: {remote_fetches(html)[0][:120]}"
