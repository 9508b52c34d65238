"""A network split over ranks by global neuron ids, for the MPI tests of
restarts on another number of ranks (imported by tests/mpi_sim.py under
``mpiexec`` and by the tests themselves for the expected state)."""

import numpy as np
import scipy.sparse

import checkpoint
from checkpoint import noise

SIZES = {"exc": 37, "inh": 11}
PARTITIONS = ("blocks", "round-robin", "irregular")


def partition(kind, size, ranks, rank):
    """The global ids rank ``rank`` of ``ranks`` holds of a population of ``size``."""
    if kind == "blocks":
        return np.array_split(np.arange(size), ranks)[rank]
    if kind == "round-robin":  # NEST's node_id % ranks
        return np.arange(rank, size, ranks)
    if kind == "irregular":  # any sorted subsets; some ranks may hold few or none
        owner = np.random.default_rng(size * 31 + ranks).integers(0, ranks, size)
        return np.flatnonzero(owner == rank)
    # broken partitions, for the tests of shard sets that do not cover the network once
    blocks = np.array_split(np.arange(size), ranks)
    if kind == "overlapping":  # every rank also holds neuron 0
        return np.union1d(blocks[rank], [0])
    if kind == "incomplete":  # nobody holds neuron 0
        return blocks[rank][blocks[rank] != 0]
    raise ValueError(kind)


def whole_network(seed):
    """The global network in one process; another seed gives other values
    and other random connectivity."""
    rng = np.random.default_rng(seed)
    net = checkpoint.Network(dt=0.25, seed=seed)
    for name, size in SIZES.items():
        net.add_population(
            name,
            size,
            parameters={"a": 0.02, "c": rng.uniform(-65, -50, size)},
            variables={"v": rng.normal(-65, 5, size), "count": np.zeros(size, np.int64)},
        )
    for name, (pre, post, density) in {"ee": ("exc", "exc", 0.3), "ei": ("exc", "inh", 0.5)}.items():
        matrix = scipy.sparse.random(SIZES[post], SIZES[pre], density=density, format="csr", random_state=seed + 1)
        net.add_projection(
            name,
            pre,
            post,
            connectivity=matrix,
            parameters={"gain": 2.0},
            variables={"w": matrix.data.astype(np.float32)},
            semiglobal={"x": rng.random(SIZES[post])},
            delays=rng.integers(1, 5, matrix.nnz),
        )
    return net


def part_of(whole, ids, seed):
    """Rank's part of ``whole``: ``ids[name]`` of each population, the
    synapses onto them (global pre indices)."""
    net = checkpoint.Network(dt=whole.dt, seed=seed)
    net.step = whole.step
    for name, pop in whole.populations.items():
        mine = ids[name]
        net.add_population(
            name,
            len(mine),
            ids=mine,
            global_size=pop.size,
            parameters={"a": pop.a, "c": pop.c[mine]},
            variables={"v": pop.v[mine], "count": pop.count[mine]},
        )
    for name, proj in whole.projections.items():
        rows = ids[proj.post.name]
        matrix = proj.to_scipy("w")[rows]
        delays = proj.to_scipy("delay")[rows]
        net.add_projection(
            name,
            proj.pre.name,
            proj.post.name,
            connectivity=matrix,
            parameters={"gain": proj.gain},
            variables={"w": matrix.data.astype(np.float32)},
            semiglobal={"x": proj.x[rows]},
            delays=delays.data.astype(np.int64),
        )
    return net


def advance(net, steps, seed=7):
    """Dynamics that do not depend on the partition: noise per global id."""
    for _ in range(steps):
        for pop in net.populations.values():
            pop.v += noise.standard_normal(seed, net.step, pop.ids)
            pop.count += (pop.v > -60).astype(np.int64)
        for proj in net.projections.values():
            proj.w *= np.float32(1.001)
            proj.x += 0.5
        net.step += 1


def snapshot(net):
    """Every value a rank holds, keyed by global identity, as JSON-able lists."""
    out = {}
    for name, pop in net.populations.items():
        out[name] = {
            "ids": pop.ids.tolist(),
            "global_size": pop.global_size,
            **{v: np.asarray(pop[v]).tolist() for v in pop.variables + pop.parameters},
        }
    for name, proj in net.projections.items():
        out[name] = {
            "post_ids": proj.post.ids.tolist(),
            "indptr": proj.indptr.tolist(),
            "indices": proj.indices.tolist(),
            **{v: np.asarray(proj[v]).tolist() for v in proj.variables + proj.parameters},
        }
    out["step"] = net.step
    return out


def expected(steps, kind, ranks, rank, seed=1):
    """What rank ``rank`` of ``ranks`` must hold after loading the checkpoint
    of ``whole_network(seed)`` advanced ``steps`` steps."""
    whole = whole_network(seed)
    advance(whole, steps)
    return snapshot(part_of(whole, {n: partition(kind, s, ranks, rank) for n, s in SIZES.items()}, seed))
