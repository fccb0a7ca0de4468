"""Every notebook under nbs/ runs as one pytest case (cells flagged `slow` are skipped, as in `nbdev_test`)."""
from pathlib import Path

import pytest
from nbdev.test import test_nb as run_notebook

NBS = Path(__file__).resolve().parent.parent / "nbs"
NOTEBOOKS = sorted(p for p in NBS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts and not p.name.startswith("_"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(NBS)) for p in NOTEBOOKS])
def test_notebook(path, monkeypatch):
    monkeypatch.chdir(path.parent)  # notebooks run from their own folder, as in Jupyter
    ok, _ = run_notebook(path, skip_flags=["slow"], basepath=NBS.parent)
    assert ok, f"{path.name} failed (its traceback is printed above)"
