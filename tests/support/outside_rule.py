"""Install the outside rule package (``tests/outside_rule``) the way an admin would, into a folder of its own.

``pip install --target`` puts the module and its ``.dist-info`` (with the entry point) in that
folder; adding it to ``sys.path`` (or ``PYTHONPATH`` for subprocesses) is what installing it
means to Python, and taking it away uninstalls it, so no other test sees the rule.
"""

from __future__ import annotations

import contextlib
import importlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "outside_rule"
MODULE = "tq_busy_week"


def install(target: Path) -> None:
    """Build from a copy (setuptools writes build files beside the sources) and install into ``target``."""
    with tempfile.TemporaryDirectory() as scratch:
        source = shutil.copytree(PACKAGE_DIR, Path(scratch) / PACKAGE_DIR.name)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                        "--no-index", "--target", str(target), str(source)], check=True)


@contextlib.contextmanager
def installed(target: Path) -> Iterator[Path]:
    """The package installed in ``target`` and importable in this process until the block ends."""
    install(target)
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    try:
        yield target
    finally:
        sys.path.remove(str(target))
        sys.modules.pop(MODULE, None)
        importlib.invalidate_caches()


def install_broken(target: Path) -> Path:
    """A distribution whose ``tutor_quality.rules`` entry point names a module that does not import, as a
    half-installed or incompatible package would; put ``target`` on PYTHONPATH to have it installed."""
    info = target / "tq_broken_rule-0.1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tq-broken-rule\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[tutor_quality.rules]\nbroken_rule = tq_broken_rule\n")
    (target / "tq_broken_rule.py").write_text("import a_module_nobody_installed  # noqa: F401\n")
    return target
