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

One helper serves a process: it starts on the first HDF5 read (about a
quarter of a second: it imports h5py) and then costs a few milliseconds
per file.  It exits when this process does (its standard input closes).
"""

import atexit
import json
import os
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

READY = "ready"
_lock = threading.Lock()
_helper = None


STARTUP_TIMEOUT = 120.0


def _start():
    """A new helper, once it has imported h5py and said so."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    helper = subprocess.Popen([sys.executable, "-c", "from checkpoint.formats._h5sandbox import serve; serve()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              env=env, text=True, bufsize=1, close_fds=True)
    if not _said_ready(helper):
        _stop(helper)
        # not the file's fault: say what failed rather than blame it
        raise CheckpointError(f"could not start the helper process ({sys.executable}) that lets the HDF5 library "
                              "check a file before this process reads it")
    return helper


def _said_ready(helper):
    """Whether the helper said READY within STARTUP_TIMEOUT.  Lines before it
    are passed over: a module the user's path puts first (a sitecustomize, a
    script's folder) may print while the helper imports."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    for _ in range(1000):
        remaining = deadline - time.monotonic()
        ready, _, _ = select.select([helper.stdout], [], [], max(remaining, 0))
        line = helper.stdout.readline() if ready else ""
        if not line:
            return False
        if line.strip() == READY:
            return True
    return False


def _stop(helper):
    helper.kill()
    helper.wait()


@atexit.register
def _shutdown():
    """Let the helper go with this process: its input closes, it exits."""
    if _helper is not None and _helper.poll() is None:
        for stream in (_helper.stdin, _helper.stdout):
            stream.close()
        try:
            _helper.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _stop(_helper)


def probe(raw, path):
    """Have the helper walk the metadata of ``raw`` (an open checkpoint);
    raise :class:`CorruptCheckpointError` if the library hangs or crashes."""
    global _helper
    same = f"/proc/{os.getpid()}/fd/{raw.fileno()}"
    target = same if os.path.exists(same) else os.path.abspath(path)
    timeout = BASE_TIMEOUT + os.fstat(raw.fileno()).st_size / BYTES_PER_SECOND
    with _lock:
        if _helper is None or _helper.poll() is not None:
            try:
                _helper = _start()
            except CheckpointError as exc:
                raise CheckpointError(exc.problem, path=path) from None
        helper = _helper
        try:
            helper.stdin.write(json.dumps({"path": target, "name": os.fspath(path)}) + "\n")
            helper.stdin.flush()
            ready, _, _ = select.select([helper.stdout], [], [], timeout)
            answer = helper.stdout.readline() if ready else None
        except (BrokenPipeError, OSError):
            answer = ""
        if answer is None:
            _stop(helper)
            _helper = None
            raise CorruptCheckpointError(f"the HDF5 library did not finish reading this file's metadata in "
                                         f"{timeout:.0f} s (a forged structure makes it loop)", path=path)
        if not answer:
            code = helper.wait()
            _helper = None
            raise CorruptCheckpointError(f"the HDF5 library crashed reading this file's metadata (exit "
                                         f"{code}, in a helper process)", path=path)


def walk(path, name):
    """What a lazy read does to the file at ``path``, plus a full read of
    every chunked dataset."""
    from .hdf5 import HDF5Format
    with open(path, "rb", buffering=0) as raw:
        with HDF5Format().read_open(raw, name, lazy=True) as state:
            for group in list(state.populations.values()) + list(state.projections.values()):
                for array in list(group.arrays.values()) + [getattr(group, "indptr", None),
                                                           getattr(group, "indices", None),
                                                           getattr(group, "simulator_order", None),
                                                           getattr(group, "ids", None)]:
                    if array is not None and array._dataset.chunks is not None:
                        array.read()
            for rng in state.rng.values():
                for array in rng.arrays.values():
                    if array._dataset.chunks is not None:
                        array.read()


def serve():
    """The helper's loop: one JSON request per line in, ``{"done": true}`` out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # a Ctrl-C is for the run, not for us
    from .hdf5 import HDF5Format  # noqa: F401  (imports h5py before saying it is ready)
    sys.stdout.write(READY + "\n")
    sys.stdout.flush()
    for line in sys.stdin:
        request = json.loads(line)
        try:
            walk(request["path"], request["name"])
        except BaseException:   # an ordinary error: the real read will raise it, with its message
            pass
        sys.stdout.write(json.dumps({"done": True}) + "\n")
        sys.stdout.flush()
