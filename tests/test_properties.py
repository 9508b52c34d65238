"""Random networks through every format and every conversion, bit for bit."""

import itertools
import os
import tempfile

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import checkpoint
from checkpoint.formats import write_state
from helpers import same_bits, state_arrays

FORMATS = ["h5", "npz", "mat", "txt", "txt.gz"]
DTYPES = ["<f8", "<f4", "<i8", "<i4", "<i2", "|i1", "<u8", "<u4", "|u1", "|b1"]

names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=10)
# Odd names we insist on, on top of what hypothesis invents.
odd_names = st.sampled_from(
    [
        "exc layer",
        "a.b",
        "a/b",
        "%2F",
        ".",
        "..",
        "ß→ü",
        "名前",
        "x" * 80,
        "indptr",
        "1st",
        "_",
        "with\nnewline",
        "nul\x00char",
    ]
)
any_name = st.one_of(names, odd_names)


def values(draw, dtype, n):
    return draw(hnp.arrays(np.dtype(dtype), n))


@st.composite
def networks(draw):
    net = checkpoint.Network(dt=draw(st.sampled_from([0.1, 0.25, 1.0])), seed=draw(st.integers(0, 2**32)))
    net.step = draw(st.integers(0, 10**9))
    net.rng.random(draw(st.integers(0, 3)))
    for pop_name in draw(st.lists(any_name, max_size=3, unique=True)):
        size = draw(st.sampled_from([0, 1, 2, 7]))
        pop = net.add_population(pop_name, size)
        for var in draw(st.lists(any_name.filter(lambda v: v not in pop._OWN), max_size=3, unique=True)):
            dtype = draw(st.sampled_from(DTYPES))
            if draw(st.booleans()):
                pop._add(var, values(draw, dtype, size), draw(st.sampled_from(["variable", "internal"])), "neuron")
            else:
                pop._add(var, values(draw, dtype, ()), "parameter", "global")
    pops = list(net.populations.values())
    if pops:
        for proj_name in draw(st.lists(any_name, max_size=2, unique=True)):
            pre, post = draw(st.sampled_from(pops)), draw(st.sampled_from(pops))
            counts = [draw(st.integers(0, 3)) for _ in range(post.size)]
            indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
            nnz = int(indptr[-1]) if pre.size else 0
            if not pre.size:
                indptr[:] = 0
            # repeated pre ranks in one row: multi-synapse pairs
            indices = np.array([draw(st.integers(0, max(pre.size - 1, 0))) for _ in range(nnz)], np.int64)
            proj = net.add_projection(proj_name, pre, post, connectivity=(indptr, indices))
            for var in draw(st.lists(any_name.filter(lambda v: v not in proj._OWN), max_size=3, unique=True)):
                dtype = draw(st.sampled_from(DTYPES))
                scope = draw(st.sampled_from(["synapse", "post", "global"]))
                shape = {"synapse": nnz, "post": post.size, "global": ()}[scope]
                proj._add(var, values(draw, dtype, shape), "parameter" if scope == "global" else "variable", scope)
    return net


def assert_same_state(a, b):
    left, right = state_arrays(a), state_arrays(b)
    assert left.keys() == right.keys()
    for key in left:
        assert same_bits(left[key], right[key]), key
    for name in a.populations:
        assert a.populations[name].info == b.populations[name].info
    for name in a.projections:
        assert a.projections[name].info == b.projections[name].info
        assert (a.projections[name].pre, a.projections[name].post) == (
            b.projections[name].pre,
            b.projections[name].post,
        )
    assert a.step == b.step and a.time == b.time and a.dt == b.dt
    assert {n: r.state for n, r in a.rng.items()} == {n: r.state for n, r in b.rng.items()}


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


@SETTINGS
@given(net=networks())
def test_every_format_round_trips_bit_for_bit(net):
    with tempfile.TemporaryDirectory() as folder:
        states = {}
        for suffix in FORMATS:
            path = os.path.join(folder, f"net.{suffix}")
            checkpoint.save(path, net)
            states[suffix] = checkpoint.read(path)
        reference = states["h5"]
        for suffix in FORMATS:
            assert_same_state(reference, states[suffix])
        from checkpoint.adapters import adapter_for

        live = adapter_for(net).capture()
        left, right = state_arrays(live), state_arrays(reference)
        assert all(same_bits(left[k], right[k]) for k in left) and left.keys() == right.keys()


@SETTINGS
@given(net=networks())
def test_every_conversion_loses_nothing(net):
    with tempfile.TemporaryDirectory() as folder:
        for source, target in itertools.permutations(FORMATS, 2):
            first = os.path.join(folder, f"a.{source}")
            second = os.path.join(folder, f"b.{target}")
            checkpoint.save(first, net)
            state = checkpoint.read(first)
            write_state(second, state)
            assert_same_state(state, checkpoint.read(second))


@SETTINGS
@given(net=networks(), suffix=st.sampled_from(FORMATS))
def test_load_restores_a_scrambled_copy(net, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, f"net.{suffix}")
        checkpoint.save(path, net)
        from checkpoint.adapters import adapter_for

        expected = state_arrays(adapter_for(net).capture())
        expected = {k: v.copy() for k, v in expected.items()}
        for group in list(net.populations.values()) + list(net.projections.values()):
            for array in group._values.values():
                array.reshape(-1).view(np.uint8)[...] ^= 0xFF
        net.step += 1
        checkpoint.load(path, net, strict=True)
        got = state_arrays(adapter_for(net).capture())
        assert all(same_bits(expected[k], got[k]) for k in expected)
