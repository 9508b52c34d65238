"""The documentation builds without a warning, and says what the code does."""

import os
import subprocess
import sys

import checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_sphinx_builds_the_docs_with_warnings_as_errors(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            os.path.join(ROOT, "docs"),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    api = (tmp_path / "html" / "api.html").read_text()
    for name in checkpoint.__all__:
        if name != "__version__":
            assert f"checkpoint.{name}" in api or f"{name}</span>" in api, name


def test_the_readme_quick_start_is_two_make_commands():
    readme = open(os.path.join(ROOT, "README.rst")).read()
    start = readme.index("Quick start")
    block = readme[start : readme.index("Installation")]
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.startswith("    make ")]
    assert commands == ["make demo", "make test"]
    assert "make test" in open(os.path.join(ROOT, ".ci", "run")).read()
