"""The adapter contract suite (tests/adapter_contract.py) for NEURON, run by
test_neuron.py in a child pytest of its own: NEURON keeps one model per
interpreter, which must not be one that runs Brian2 or ANNarchy too.

``make`` drops the previous model (NEURON deletes what Python no longer
references) and builds the ring of tests/neuron_models.py afresh; the seed
gives the NetStims other Random123 streams (NEURON's NetCons are the
script's, so "other connectivity" is the same here).
"""

import gc

import neuron_models
from adapter_contract import AdapterContract
from helpers import capture_copy
import pytest
from neuron import h

from checkpoint.adapters import adapter_for
from checkpoint.adapters.neuron import randoms

pytestmark = pytest.mark.filterwarnings("ignore::checkpoint.CheckpointWarning")


class TestNEURONContract(AdapterContract):
    restored = (
        "BallAndStick.soma.v",
        "BallAndStick.soma.m_hh",
        "ExpSyn.g",
        "NetStim.ranvar.seq",
        "BallAndStick.soma->ExpSyn.weight",
        "NEURON.savestate",
    )
    model = None

    def make(self, seed):
        type(self).model = None
        gc.collect()
        type(self).model = neuron_models.build(n=8, seed=seed, hoc_random=False)
        h.finitialize(-65)
        return h

    def advance(self, model):
        h.continuerun(h.t + 7.3)

    def captured(self, model):
        # NEURON's SaveState writes heap addresses among its values (two saves of
        # one state differ): its bytes are judged by what they restore, not compared
        out = capture_copy(adapter_for(model).capture(), repr(float(h.t)))
        out.pop("populations/NEURON/savestate")
        return out

    def fail_midway(self, monkeypatch, model):
        def fail(*args):
            raise RuntimeError("injected failure")

        monkeypatch.setattr(randoms, "write", fail)  # after every array and NetCon is set
