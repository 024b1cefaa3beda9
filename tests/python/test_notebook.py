"""examples/notebooks/quickstart.ipynb runs headless from top to bottom (nbclient + ipykernel),
every cell without an error, and writes its four figures as PNGs."""
import os
import pathlib
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "examples" / "notebooks" / "quickstart.ipynb"
FIGURES = ["reward_heatmap.png", "reward_distribution.png", "best_of_n.png", "rpe_steps.png"]


def test_quickstart_notebook_runs_headless_and_saves_its_figures(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    pytest.importorskip("pandas")
    import genprm
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit the notebook without outputs"
    env_before = dict(os.environ)
    # the kernel is a child process: it finds this genprm (a build tree or an install) and writes
    # the figures under tmp_path
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(pathlib.Path(genprm.__file__).resolve().parents[1])] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    os.environ["GENPRM_FIGURES"] = str(tmp_path / "figures")
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    try:
        start = time.time()
        client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                         resources={"metadata": {"path": str(tmp_path)}})
        client.execute()
        seconds = time.time() - start
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    print(f"quickstart.ipynb executed in {seconds:.1f} s")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "using the trained models of genprm.arith" in text
    assert "adaptive: labels" in text
    # rich outputs: the verification / search / RPE results render as HTML, figures as PNG
    html = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if o.output_type == "execute_result" and "text/html" in o.get("data", {})]
    assert len(html) >= 3 and any("rationale 1" in o["data"]["text/html"] for o in html)
    pngs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(pngs) == len(FIGURES)
    for name in FIGURES:
        data = (tmp_path / "figures" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name
