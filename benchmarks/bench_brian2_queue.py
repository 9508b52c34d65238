"""What one empty slot of a spike queue's ring costs Brian2's Cython queue
when a checkpoint restores it (the bound checkpoint.adapters.brian2.queues
puts on a file's ring), measured as peak resident memory in a child process
per ring length.

    python benchmarks/bench_brian2_queue.py
"""

import json
import subprocess
import sys

CHILD = r"""
import resource, sys
import numpy as np
from brian2.synapses.cythonspikequeue import SpikeQueue
from checkpoint.adapters.brian2.queues import _EMPTY_SLOT
ring = int(sys.argv[1])
queue = SpikeQueue(0, 1)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
slots = [_EMPTY_SLOT] * ring          # as restore_queue builds them
counts = np.zeros(ring, np.int64)     # the file's counts and their cumulative sum
ends = np.cumsum(counts)
queue._restore_from_full_state((0, slots))
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
"""


def peak(ring):
    done = subprocess.run([sys.executable, "-c", CHILD, str(ring)], capture_output=True, text=True, check=True)
    return int(done.stdout.strip().splitlines()[-1])


def main():
    small, large = 1 << 20, 1 << 23
    grown = peak(large) - peak(small)
    print(
        json.dumps(
            {
                "ring": [small, large],
                "peak_bytes": [peak(small), peak(large)],
                "bytes_per_slot": round(grown / (large - small), 1),
            }
        )
    )


if __name__ == "__main__":
    main()
