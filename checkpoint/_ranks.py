"""How the ranks of an MPI run agree, written once; one process is one rank.

The Checkpointer and :mod:`checkpoint.distributed` call these with an
mpi4py communicator, or with :data:`ONE_PROCESS` outside MPI, so that
neither needs a branch for "no communicator".
"""

from .errors import CheckpointError


class OneProcess:
    """The calls of an mpi4py communicator checkpoint makes, for a run of one process."""

    rank, size = 0, 1

    def allgather(self, value):
        return [value]

    def bcast(self, value, root=0):
        return value


ONE_PROCESS = OneProcess()


class ParallelContextComm:
    """The calls above, made through a NEURON ``ParallelContext`` (which
    ``comm=pc`` may pass instead of an mpi4py communicator)."""

    def __init__(self, pc):
        self.pc = pc
        self.rank, self.size = int(pc.id()), int(pc.nhost())

    def allgather(self, value):
        return list(self.pc.py_allgather(value))

    def bcast(self, value, root=0):
        return self.pc.py_broadcast(value, root)


def as_communicator(comm):
    """``comm`` itself, or a NEURON ParallelContext wrapped as one."""
    if comm is not None and hasattr(comm, "py_allgather") and not hasattr(comm, "bcast"):
        return ParallelContextComm(comm)
    return comm


def on_leader(comm, work, what, path=None):
    """Run ``work`` on rank 0 only and hand its result, or its failure, to
    every rank (rank 0 re-raises its own exception; the others raise a
    :class:`CheckpointError` naming it)."""
    result = error = None
    if comm.rank == 0:
        try:
            result = work()
        except Exception as exc:
            error = exc
    failed, result = comm.bcast((error is not None and f"{type(error).__name__}: {error}", result), root=0)
    if error is not None:
        raise error
    if failed:
        raise CheckpointError(f"rank 0 could not {what}: {failed}", path=path)
    return result


def agree(comm, error, what, path=None):
    """Every rank learns whether any rank failed; all raise if one did.

    ``error`` is this rank's exception or None.  The failing rank re-raises
    its own; the others raise a :class:`CheckpointError` naming it.
    """
    errors = comm.allgather(None if error is None else f"{type(error).__name__}: {error}")
    failed = [(rank, message) for rank, message in enumerate(errors) if message is not None]
    if not failed:
        return
    if error is not None:
        raise error
    rank, message = failed[0]
    raise CheckpointError(f"rank {rank} could not {what}: {message}", path=path)
