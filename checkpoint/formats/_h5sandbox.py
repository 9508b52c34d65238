"""Let the HDF5 library walk a file's metadata in a helper process first.

The HDF5 library trusts a file's metadata: a forged object header, B-tree
or attribute can make it loop forever or crash the interpreter.  The
userblock digest (:mod:`._h5guard`) proves the metadata undamaged, not
harmless, since anyone can recompute it.  So before this process lets the
library near a file, a helper process opens the same inode (through
``/proc/<pid>/fd``) and does everything a lazy read does — open the file,
read the manifest, open every dataset, check its storage against the
budget — and reads every chunked dataset in full (chunk indexes are
metadata too).  A helper that crashes or does not answer in time makes
the read a :class:`CorruptCheckpointError`, and is replaced by a new one;
an ordinary error in the helper is left to the real read to raise.

The helper starts when the HDF5 format module is imported
(:func:`prestart`), so that a first read does not wait for it.  On Linux it
is forked from the importing process, which has h5py imported by then: it
is ready in milliseconds, and keeps only ``/dev/null`` and its two pipes of
the parent's files.  Where forking is not safe (other Python threads
running, an import off the main thread, an MPI library loaded, not Linux)
and for every replacement, it is a new interpreter, started in the
background, that imports h5py itself (a few tenths of a second, which
overlap the caller's work).  A file then costs a few milliseconds.
``CHECKPOINT_HDF5_HELPER=lazy`` in the environment starts it on the first
HDF5 read instead, ``=spawn`` never forks it.

Promises kept whatever happens to the caller:

* **An answer belongs to one request.**  Each request carries an id that
  its answer repeats; a request interrupted in any way (a Ctrl-C, a
  timeout) discards its helper, since that helper's next answer would be
  about this file, and a replacement starts in the background.
* **The helper dies with this process**, even a SIGKILL, and even while
  the HDF5 library loops in it: on Linux the kernel kills it when its
  parent dies (``PR_SET_PDEATHSIG``; since the kernel ties that signal to
  the thread that started the helper, a new interpreter is started from one
  thread that lives as long as the process, and a fork is made from the
  main thread only), and on any system a watchdog thread in the
  helper exits when its parent changes, and its loop exits when its input
  closes.  A child this process forks does not keep the helper's pipes.
"""

import atexit
import itertools
import json
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time

from ..errors import CheckpointError, CorruptCheckpointError

#: Seconds the helper may take for a file: a base, plus time to inflate
#: the compressed chunks a file of that size can hold.
BASE_TIMEOUT = 30.0
BYTES_PER_SECOND = 20e6
#: Seconds a new helper may take to import h5py and say it is ready.
STARTUP_TIMEOUT = 120.0

READY = "ready"
#: In the helper's environment: its parent's pid (and so: start no helper of its own).
CHILD_ENV = "CHECKPOINT_HDF5_HELPER_PARENT"
#: ``lazy``: start the helper on the first HDF5 read, not at import; ``spawn``: never fork it.
START_ENV = "CHECKPOINT_HDF5_HELPER"
#: Errors in the helper that say nothing about the file: the real read must not go ahead unwalked.
NOT_THE_FILE = ("ImportError", "ModuleNotFoundError", "NameError")

# The helper's first lines, before it imports anything heavy: die with the
# parent from the start (the kernel signal, checked against a parent that
# died before it was set, and a watchdog for systems without it).
BOOTSTRAP = """\
import os, sys, threading, time
parent = int(os.environ["%(env)s"])
try:
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, 9, 0, 0, 0)   # PR_SET_PDEATHSIG, SIGKILL
except (OSError, AttributeError):
    pass
def watch():
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)
if os.getppid() != parent:
    os._exit(1)
threading.Thread(target=watch, daemon=True).start()
from checkpoint.formats.hdf5 import serve_helper
serve_helper()
""" % {"env": CHILD_ENV}

_lock = threading.Lock()
_helper = None
_ids = itertools.count(1)
_spawner = None


class _Spawner:
    """One thread, living as long as the process, that starts every helper:
    the kernel kills a helper when the thread that started it ends."""

    def __init__(self):
        self.jobs = queue.SimpleQueue()
        threading.Thread(target=self._run, name="checkpoint-hdf5-helper-starter", daemon=True).start()

    def _run(self):
        while True:
            helper = self.jobs.get()
            try:
                helper.popen = _start()
            except BaseException as exc:  # reported to whoever waits for this helper
                helper.error = exc
            helper.started.set()


class _Helper:
    """A helper process being started (by the spawner thread) or running."""

    def __init__(self, process=None):
        global _spawner
        self.popen, self.error, self.ready = process, None, False
        self.started = threading.Event()
        if process is not None:
            self.started.set()
            return
        if _spawner is None:
            _spawner = _Spawner()
        _spawner.jobs.put(self)

    def alive(self):
        return not self.started.is_set() or (self.popen is not None and self.popen.poll() is None)

    def await_ready(self):
        """Whether the helper started and said READY within STARTUP_TIMEOUT."""
        if self.ready:
            return True
        deadline = time.monotonic() + STARTUP_TIMEOUT
        if not self.started.wait(STARTUP_TIMEOUT) or self.popen is None:
            return False
        self.ready = _said_ready(self.popen, deadline)
        return self.ready

    def ask(self, request, timeout):
        """The answer to ``request``: a dict, ``None`` if none came in
        ``timeout`` seconds, ``""`` if the helper died."""
        deadline = time.monotonic() + timeout
        try:
            self.popen.stdin.write(json.dumps(request) + "\n")
            self.popen.stdin.flush()
            while True:
                ready, _, _ = select.select([self.popen.stdout], [], [], max(deadline - time.monotonic(), 0))
                if not ready:
                    return None
                line = self.popen.stdout.readline()
                if not line:
                    return ""
                answer = _parse(line)
                if answer is not None and answer.get("id") == request["id"]:
                    return answer
                # a line that is not this request's answer (a module printing
                # in the helper) is passed over; never taken for the answer
        except (BrokenPipeError, OSError):
            return ""

    def stop(self):
        """Kill it (it holds nothing: it only reads) and reap it."""
        if self.started.wait(STARTUP_TIMEOUT) and self.popen is not None:
            for stream in (self.popen.stdin, self.popen.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            self.popen.kill()
            self.popen.wait()


def _parse(line):
    try:
        answer = json.loads(line)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _start():
    """A new helper process (run by the spawner thread)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    env[CHILD_ENV] = str(os.getpid())
    return subprocess.Popen(
        [sys.executable, "-c", BOOTSTRAP],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
        bufsize=1,
        close_fds=True,
    )


def _said_ready(popen, deadline):
    """Whether ``popen`` said READY before ``deadline``.  Lines before it
    are passed over: a module the user's path puts first (a sitecustomize, a
    script's folder) may print while the helper imports."""
    for _ in range(1000):
        ready, _, _ = select.select([popen.stdout], [], [], max(deadline - time.monotonic(), 0))
        line = popen.stdout.readline() if ready else ""
        if not line:
            return False
        if line.strip() == READY:
            return True
    return False


class _Forked:
    """A helper forked from this process, with the part of
    :class:`subprocess.Popen` that the rest of this module uses."""

    def __init__(self, pid, stdin, stdout):
        self.pid, self.stdin, self.stdout, self.returncode = pid, stdin, stdout, None

    def poll(self):
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self):
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode

    def kill(self):
        if self.poll() is None:
            os.kill(self.pid, signal.SIGKILL)


def _can_fork():
    """Whether this process may fork a helper: Linux (the helper must die
    with it), a single Python thread (none can hold a lock the helper would
    need), the main thread (the kernel ties the parent-death signal to the
    forking thread), and no MPI library loaded (forking an MPI process is
    not portable)."""
    if not sys.platform.startswith("linux") or os.environ.get(START_ENV) == "spawn":
        return False
    if threading.active_count() != 1 or threading.current_thread() is not threading.main_thread():
        return False
    try:
        with open("/proc/self/maps", "rb") as f:
            return b"libmpi" not in f.read()
    except OSError:
        return False


def _fork(fmt):
    """A helper forked from this process, which has h5py imported already:
    ready in milliseconds, where a new interpreter takes tenths of a second
    to import it."""
    import fcntl
    import warnings

    requests_r, requests_w = os.pipe()
    answers_r, answers_w = os.pipe()
    parent = os.getpid()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # threads of numpy's BLAS: the helper uses none
        pid = os.fork()
    if pid == 0:
        try:
            _die_with(parent)
            # our pipes out of the way of 0-2, which go to /dev/null: the helper
            # holds none of the parent's files, terminals or pipes
            requests = fcntl.fcntl(requests_r, fcntl.F_DUPFD, 10)
            answers = fcntl.fcntl(answers_w, fcntl.F_DUPFD, 10)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            for fd in range(3, max(requests, answers) + 1):
                if fd not in (requests, answers):
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            os.closerange(max(requests, answers) + 1, os.sysconf("SC_OPEN_MAX"))
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            _serve(open(requests, "r", closefd=True), open(answers, "w", buffering=1, closefd=True), fmt)
        finally:
            os._exit(0)
    os.close(requests_r)
    os.close(answers_w)
    return _Forked(pid, open(requests_w, "w", buffering=1), open(answers_r, "r"))


def _die_with(parent):
    """In the helper: be killed by the kernel when ``parent`` dies, and a
    watchdog for where that signal is not there."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def prestart(fmt):
    """Start a helper in the background unless one is there (or starting):
    forked where that is safe, else a new interpreter.  ``fmt`` is the
    HDF5 format class (a forked helper has it already)."""
    global _helper
    if CHILD_ENV in os.environ or os.environ.get(START_ENV) == "lazy":
        return
    with _lock:
        if _helper is not None and _helper.alive():
            return
        process = None
        if _can_fork():
            try:
                process = _fork(fmt)
            except OSError:
                process = None
        _helper = _Helper(process)


def _discard(helper, replace=True):
    """Forget ``helper`` (killing it) and, unless told not to, start a
    replacement in the background."""
    global _helper
    if _helper is helper:
        _helper = None
    helper.stop()
    if replace and _helper is None and os.environ.get(START_ENV) != "lazy":
        _helper = _Helper()


@atexit.register
def _shutdown():
    """Kill the helper now rather than wait for it to finish importing."""
    if _helper is not None and _helper.started.is_set():
        _helper.stop()


def _forget_in_child():
    """In a child this process forked: the helper is the parent's, and the
    spawner thread does not exist here.  Close the child's copies of the
    helper's pipes, so that the helper still sees its input close when the
    parent dies; this child starts its own helper when it reads HDF5."""
    global _helper, _spawner, _lock
    _lock, _spawner, old, _helper = threading.Lock(), None, _helper, None
    if old is not None and old.popen is not None:
        for stream in (old.popen.stdin, old.popen.stdout):
            try:
                stream.close()
            except (OSError, ValueError):
                pass
        old.popen.returncode = 0  # not this process's child: never to be waited for here


def probe(raw, path):
    """Have the helper walk the metadata of ``raw`` (an open checkpoint);
    raise :class:`CorruptCheckpointError` if the library hangs or crashes."""
    global _helper
    same = f"/proc/{os.getpid()}/fd/{raw.fileno()}"
    target = same if os.path.exists(same) else os.path.abspath(path)
    timeout = BASE_TIMEOUT + os.fstat(raw.fileno()).st_size / BYTES_PER_SECOND
    with _lock:
        if _helper is None or not _helper.alive():
            _helper = _Helper()
        helper = _helper
        request = {"id": next(_ids), "path": target, "name": os.fspath(path)}
        try:
            ready = helper.await_ready()
            answer = helper.ask(request, timeout) if ready else None
        except BaseException:
            # interrupted (a Ctrl-C) mid-request: this helper's next answer
            # would be about this file, so no later file may hear it
            _discard(helper)
            raise
        if not ready:
            _discard(helper, replace=False)
            # not the file's fault: say what failed rather than blame it
            raise CheckpointError(
                f"could not start the helper process ({sys.executable}) that lets the "
                "HDF5 library check a file before this process reads it",
                path=path,
            )
        if answer is None:
            _discard(helper)
            raise CorruptCheckpointError(
                f"the HDF5 library did not finish reading this file's metadata in "
                f"{timeout:.0f} s (a forged structure makes it loop)",
                path=path,
            )
        if not answer:
            _discard(helper)
            raise CorruptCheckpointError(
                f"the HDF5 library crashed reading this file's metadata (exit "
                f"{helper.popen.returncode}, in a helper process)",
                path=path,
            )
        if answer.get("error") in NOT_THE_FILE:
            raise CheckpointError(
                f"the helper process could not check this file ({answer['error']} in the helper, not in the file)",
                path=path,
            )


def walk(fmt, path, name):
    """What a lazy read does to the file at ``path``, plus a full read of
    every chunked dataset."""
    with open(path, "rb", buffering=0) as raw:
        with fmt().read_open(raw, name, lazy=True) as state:
            for group in list(state.populations.values()) + list(state.projections.values()):
                for array in list(group.arrays.values()) + [
                    getattr(group, "indptr", None),
                    getattr(group, "indices", None),
                    getattr(group, "simulator_order", None),
                    getattr(group, "ids", None),
                ]:
                    if array is not None and array._dataset.chunks is not None:
                        array.read()
            for rng in state.rng.values():
                for array in rng.arrays.values():
                    if array._dataset.chunks is not None:
                        array.read()


def serve(fmt):
    """A new interpreter's helper loop, on its standard input and output,
    walking files with ``fmt`` (the HDF5 format class, whose module has
    imported h5py before the helper says it is ready:
    :func:`checkpoint.formats.hdf5.serve_helper` calls this, so that this
    module never imports the format that imports it)."""
    _serve(sys.stdin, sys.stdout, fmt)


def _serve(requests, answers, fmt):
    """The helper's loop: one JSON request per line in, its answer (the
    same id, and the type of an error the walk raised) out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is for the run, not for us
    answers.write(READY + "\n")
    answers.flush()
    for line in requests:
        request = json.loads(line)
        error = None
        try:
            walk(fmt, request["path"], request["name"])
        except BaseException as exc:  # an ordinary error: the real read will raise it, with its message
            error = type(exc).__name__
        answers.write(json.dumps({"id": request["id"], "done": True, "error": error}) + "\n")
        answers.flush()


os.register_at_fork(after_in_child=_forget_in_child)
