"""The embedded network's adapter runs the adapter contract (adapter_contract.py)."""

import pytest

from adapter_contract import AdapterContract
from checkpoint.adapters import adapter_for
from checkpoint.adapters.embedded import EmbeddedAdapter
from helpers import capture_copy, izhikevich_network


class TestEmbeddedContract(AdapterContract):
    restored = ("pop0.v", "pop0.last_spike", "proj0.w", "proj0.x_post")

    def make(self, seed):
        net = izhikevich_network(seed=seed)
        net.add_state_recorder("v_of_two", "pop0", "v", indices=[0, 3])
        return net

    def advance(self, model):
        pop = model.populations["pop0"]
        for _ in range(5):
            pop.v += model.rng.normal(0.0, 1.0, pop.size)
            model.step += 1
            model.record()

    def captured(self, model):
        state = adapter_for(model).capture()
        return capture_copy(state, repr((state.time, state.step)))

    def fail_midway(self, monkeypatch, model):
        def fail(self, name, rng):
            raise RuntimeError("injected failure after the arrays were swapped in")

        monkeypatch.setattr(EmbeddedAdapter, "restore_generator", fail)

    def parts(self, model):
        return model.populations["pop0"], model.projections["proj0"]

    def unsupported(self, model):
        return [object(), model.rng, {"pop0": model.populations["pop0"]}]


def test_the_embedded_adapter_can_be_a_shard():
    assert adapter_for(izhikevich_network()).shardable
    with pytest.raises(TypeError):  # the contract is abstract
        from checkpoint.adapters.base import Adapter

        Adapter(None)
