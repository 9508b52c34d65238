"""One Izhikevich + STDP network split over MPI ranks, that survives being
killed and resumes on any number of ranks.

    mpiexec -n 4 python examples/mpi_izhikevich.py [--steps 4000] [--folder mpi-ckpts]
                                                   [--partition blocks|round-robin]

The network is examples/izhikevich_stdp.py's, built once for all ranks from
one seed: each rank holds some neurons of each population (by global index,
``ids=``) and the synapses onto them.  Spikes and STDP traces are exchanged
every step.  Noise is drawn per neuron from ``checkpoint.noise`` (keyed by
seed, step and global id), so it does not depend on the partition.

Stop it (Ctrl-C, or SIGTERM / SIGUSR1 to any one rank) and start it again,
with as many ranks or another number: it goes on from the same step, and
ends bit for bit where a run on one rank ends (the ``state digest`` line).
Needs ``pip install 'neuro-checkpoint[mpi]'`` (mpi4py and MPICH).
"""

import argparse
import logging
import os
import sys

import numpy as np
import scipy.sparse
from mpi4py import MPI

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import izhikevich_stdp  # noqa: E402

import checkpoint  # noqa: E402
from checkpoint.hashing import checksum  # noqa: E402

SEED = 42


def my_ids(size, comm, partition):
    """The global indices of the neurons this rank holds."""
    if partition == "round-robin":  # as NEST distributes neurons: node_id % ranks
        return np.arange(comm.rank, size, comm.size)
    return np.array_split(np.arange(size), comm.size)[comm.rank]


def build(comm, partition, n_exc=800, n_inh=200, density=0.1, dt=0.5):
    """This rank's part of izhikevich_stdp.build(SEED): the global network is
    drawn the same on every rank, and each keeps its own neurons' rows."""
    whole = izhikevich_stdp.build(seed=SEED, n_exc=n_exc, n_inh=n_inh, density=density, dt=dt)
    net = checkpoint.Network(dt=dt, seed=SEED + comm.rank)
    for name, pop in whole.populations.items():
        ids = my_ids(pop.size, comm, partition)
        net.add_population(
            name,
            len(ids),
            ids=ids,
            global_size=pop.size,
            parameters={v: pop[v][ids] if np.ndim(pop[v]) else pop[v] for v in pop.parameters},
            variables={v: pop[v][ids] for v in pop.variables if pop.kind(v) == "variable"},
            internal={v: pop[v][ids] for v in pop.variables if pop.kind(v) == "internal"},
        )
    for name, proj in whole.projections.items():
        rows = net.populations[proj.post.name].ids
        matrix = proj.to_scipy("w")[rows]  # this rank's post neurons, global pre indices
        net.add_projection(
            name,
            proj.pre.name,
            proj.post.name,
            proj.target,
            matrix,
            parameters={v: proj[v] for v in proj.parameters},
            variables={"w": matrix.data},
        )
    return net


def exchange(pop, var, comm):
    """A population's ``var`` for all its neurons, gathered from every rank."""
    whole = np.zeros(pop.global_size, pop[var].dtype)
    for ids, values in comm.allgather((pop.ids, pop[var])):
        whole[ids] = values
    return whole


def step(net, comm):
    """izhikevich_stdp.step, with the pre-synaptic side gathered from all ranks."""
    pop0, pop1 = net.populations["pop0"], net.populations["pop1"]
    proj0, proj1 = net.projections["proj0"], net.projections["proj1"]
    spiked0, spiked1 = exchange(pop0, "spiked", comm), exchange(pop1, "spiked", comm)
    noise0 = checkpoint.noise.standard_normal(SEED, 2 * net.step, pop0.ids)
    noise1 = checkpoint.noise.standard_normal(SEED, 2 * net.step + 1, pop1.ids)
    input0 = 6.5 * noise0 + scipy.sparse.csr_matrix(
        (proj1.w, proj1.indices, proj1.indptr), shape=proj1.shape
    ) @ spiked1.astype(np.float64)
    input1 = 3.0 * noise1 + scipy.sparse.csr_matrix(
        (proj0.w, proj0.indices, proj0.indptr), shape=proj0.shape
    ) @ spiked0.astype(np.float64)
    izhikevich_stdp._izhikevich(pop0, input0, net.dt)
    izhikevich_stdp._izhikevich(pop1, input1, net.dt)
    for pop in (pop0, pop1):
        pop.trace *= np.exp(-net.dt / pop.tau_trace)
        pop.trace[pop.spiked] += 1.0
        pop.last_spike[pop.spiked] = net.step
    pre_trace, pre_spiked = exchange(pop0, "trace", comm), exchange(pop0, "spiked", comm)
    post_of_synapse = proj0.post_ranks()
    proj0.w += proj0.A_plus * pre_trace[proj0.indices] * pop1.spiked[post_of_synapse]
    proj0.w -= proj0.A_minus * pop1.trace[post_of_synapse] * pre_spiked[proj0.indices]
    np.clip(proj0.w, 0.0, proj0.w_max, out=proj0.w)
    net.step += 1


def state_digest(net, comm):
    """One checksum of the whole network's state, the same for any partition."""
    parts = []
    for pop in net.populations.values():
        parts += [exchange(pop, v, comm) for v in ("v", "u", "trace")]
    for proj in net.projections.values():
        rows = comm.allgather(
            (proj.post.ids, [proj.w[proj.indptr[i] : proj.indptr[i + 1]] for i in range(proj.post.size)])
        )
        by_row = dict(pair for ids, ws in rows for pair in zip(ids.tolist(), ws))
        parts.append(np.concatenate([by_row[i] for i in range(proj.post.global_size)]))
    return checksum(np.concatenate(parts))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--folder", default="mpi-ckpts")
    parser.add_argument("--partition", choices=("blocks", "round-robin"), default="blocks")
    args = parser.parse_args()
    comm = MPI.COMM_WORLD
    logging.basicConfig(level=logging.INFO if comm.rank == 0 else logging.WARNING, format="%(message)s")
    net = build(comm, args.partition)
    with checkpoint.Checkpointer(args.folder, net, every_steps=500, keep=2, comm=comm) as ckpt:
        report = ckpt.restore_latest()
        if comm.rank == 0:
            print(f"resumed at step {report.step} on {comm.size} ranks" if report else "fresh start")
        try:
            while net.step < args.steps:
                step(net, comm)
                ckpt.maybe_save()
        except checkpoint.Interrupted as stop:
            if comm.rank == 0:
                print(f"stopped by signal {stop.signum} at step {net.step}; checkpoint {stop.path}")
            sys.exit(0)
        ckpt.save(skip_if_saved=True)
    digest = state_digest(net, comm)
    if comm.rank == 0:
        print(
            f"done at step {net.step} on {comm.size} ranks; state digest {digest}; "
            f"checkpoints in {args.folder}/ (delete the folder to start over)"
        )


if __name__ == "__main__":
    main()
