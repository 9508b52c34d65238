"""The NEST adapter: the kernel's nodes and connections, its clock.

The concepts live beside it: :mod:`.nodes`, :mod:`.connections` and
:mod:`.clock`.
"""

import contextlib
import warnings
from dataclasses import dataclass, field

import numpy as np

from ...errors import CheckpointWarning, StructureMismatchError, UnsupportedObjectError
from ...restore import UndoLog
from ...state import NetworkState
from ..base import Adapter
from .clock import HIDDEN_STATE, OFFSET_MODEL, restore_clock, time_offset, validate_meta
from .connections import (
    RECEPTOR,
    Connections,
    SynapseGroup,
    check_rebuild,
    check_receptors,
    projection_of,
    rebuild_projection,
)
from .nodes import (
    POPULATION_TYPES,
    capture_group,
    capture_recorder,
    check_lengths,
    check_positions,
    group_index,
    id_ranges,
    layer_positions,
    nest_module,
    node_groups,
    restore_group,
)


@dataclass
class Found:
    """What a load's describe read from the kernel, for its apply (NEST
    reads a connection's status at about 10 us: read once per load)."""

    connections: dict = field(default_factory=dict)  # synapse model -> Connections
    projections: dict = field(default_factory=dict)  # name -> SynapseGroup
    status: dict = field(default_factory=dict)  # population name -> its nodes' status


class NESTAdapter(Adapter):
    exact_restart = False  # NEST keeps its generators, spikes in flight and currents out of reach
    shardable = True  # under MPI each rank saves its own neurons and their incoming connections
    captures_monitors = True  # recorders' events, for analysis; NEST cannot set them back
    records = True  # recording devices to memory, streamed by a Checkpointer: see .recordings
    simulator = "nest"

    def __init__(self, obj, monitors=False):
        super().__init__(obj)
        nest = nest_module()
        self.simulator_version = nest.__version__
        self.monitors = monitors
        kind = type(obj).__name__
        if obj is nest:
            self.content = "network"
            self._groups = [g for g in node_groups(nest.GetNodes()) if g.element_type in POPULATION_TYPES]
            self.populations = {g.name: g for g in self._groups}
            self.projections = {}  # found by each capture (Found.projections): connections change
        elif kind == "NodeCollection":
            groups = node_groups(obj)
            if len(groups) != 1 or groups[0].element_type not in POPULATION_TYPES:
                raise UnsupportedObjectError(
                    "pass a NodeCollection of consecutive neurons or stimulators "
                    "of one model (as one nest.Create made it)",
                    obj=str(obj),
                )
            self.content, self.populations, self.projections = "population", {groups[0].name: groups[0]}, {}
            # a spatial layer's positions live in the NodeCollection Create returned, not in the kernel
            groups[0].positions = layer_positions(obj)
        elif kind == "SynapseCollection":
            self.content, self.populations = "projection", {}
            projection = projection_of(obj)
            self.projections = {projection.name: projection}
        else:
            raise UnsupportedObjectError(
                f"cannot checkpoint a NEST {kind}: pass the nest module, a NodeCollection or a SynapseCollection",
                obj=kind,
            )

    # -------------------------------------------------------------- capture

    def clock(self):
        nest = nest_module()
        time = float(nest.biological_time) + time_offset()
        return time, int(round(time / nest.resolution))

    def recorders(self):
        from .recordings import recorders

        return recorders(time_offset) if self.content == "network" else []

    def capture(self, populations=True, projections=True):
        state, found = self._capture(populations, projections)
        if projections and self.content == "network":
            self._warn_recorder_connections(found)
        if self.content == "network":
            warnings.warn(HIDDEN_STATE, CheckpointWarning, stacklevel=4)
        if populations and self.monitors and self.content == "network":
            for group in node_groups(nest_module().GetNodes()):
                if group.element_type == "recorder":
                    state.populations[group.name] = capture_recorder(group)
        return state

    def describe(self, populations=True, projections=True):
        # without recorders: their events are in a file for analysis, and NEST
        # cannot put them back (a load lists them as skipped)
        state, state.findings = self._capture(populations, projections, keep_status=True)
        return state

    def _capture(self, populations, projections, keep_status=False):
        """The state and the :class:`Found` it was read from."""
        nest = nest_module()
        time, step = self.clock()
        meta = self.base_meta(self.content, time, step, nest.resolution)
        meta["nest"] = {
            "rng_seed": int(nest.rng_seed),
            "rng_type": str(nest.rng_type),
            "biological_time": float(nest.biological_time),
        }
        state, found = NetworkState(meta=meta), Found()
        if populations:
            for name, group in self.populations.items():
                state.populations[name], status = capture_group(group, warn=not keep_status)
                if keep_status:
                    found.status[name] = status
        if projections:
            found.connections, found.projections = self._read_connections()
            for name, projection in found.projections.items():
                state.projections[name] = found.connections[projection.synapse_model].capture(projection)
        return state, found

    def _read_connections(self):
        """``({synapse model: Connections}, {name: SynapseGroup})``: every
        connection the projections hold, one status call per synapse model
        (NEST builds a dictionary per connection, by far the slowest step),
        and, for the whole kernel, the projections they make (connections
        change during a run: found anew by each capture)."""
        nest = nest_module()
        if self.content != "network":  # one population (no connections) or one projection
            return {p.synapse_model: Connections(p.connections()) for p in self.projections.values()}, dict(
                self.projections
            )
        models = [m for m in nest.synapse_models if m != OFFSET_MODEL and nest.GetDefaults(m).get("num_connections", 0)]
        connections = {m: Connections(nest.GetConnections(synapse_model=m)) for m in models}
        return connections, {p.name: p for m in models for p in connections[m].projections(m, self._groups)}

    def _warn_recorder_connections(self, found):
        """Connections to and from recorders are the script's wiring, not
        state: not saved, and said so (a resumed script must make them)."""
        recorders = set()
        for connections in found.connections.values():
            for ids in (connections.source, connections.target):
                outside = ids[group_index(self._groups, ids) < 0] if len(self._groups) else ids
                recorders.update(np.unique(outside).tolist())
        if recorders:
            warnings.warn(
                f"connections to or from recorders (nodes {id_ranges(sorted(recorders))}) are not saved: "
                "create and connect recorders in the script on every start, resumed or not",
                CheckpointWarning,
                stacklevel=5,
            )

    # ------------------------------------------------------------- restore

    def before_plan(self, file_state, model_state, path):
        """The file's projections between nodes the kernel has but not (yet)
        connected become empty projections of the model, so that the plan
        makes them, with one array Connect each (the resume idiom: build the
        nodes, connect only on a fresh start).  Returns them, with the
        findings that name them."""
        validate_meta(file_state.meta, path)
        if self.content != "network":
            return None
        found = model_state.findings
        groups = {g.name: g for g in self._groups}
        models = set(nest_module().synapse_models)
        added = NetworkState(findings=Found(dict(found.connections), dict(found.projections), found.status))
        for name, saved in file_state.projections.items():
            if name in model_state.projections:
                continue
            synapse_model, _, ends = name.partition(" ")
            pre, _, post = ends.partition("->")
            if synapse_model not in models or pre not in groups or post not in groups:
                continue  # nothing to connect: the report lists it as skipped
            projection = SynapseGroup(synapse_model, groups[pre], groups[post])
            added.findings.projections[name] = projection
            connections = added.findings.connections.setdefault(synapse_model, Connections(projection.connections()))
            empty = added.projections[name] = connections.capture(projection)
            for var, array in saved.arrays.items():  # the same names and types, no synapses yet
                empty.arrays.setdefault(var, np.zeros(0, np.asarray(array).dtype))
                empty.info.setdefault(var, saved.info[var])
        return added

    def apply_reversibly(self, plan):
        """Apply ``plan`` (after :meth:`describe`, whose reading of the
        nodes and connections, ``plan.findings``, it uses); on any failure
        put everything back."""
        values = plan.by_object()
        nest = nest_module()
        found = plan.findings if plan.findings is not None else self._capture(True, True, keep_status=True)[1]
        for (section, name), group_values in values.items():
            if section == "populations":  # what NEST would take wrongly, refused before any change
                check_positions(self.populations[name], group_values, plan.report.path)
                check_lengths(self.populations[name], group_values, plan.report.path, name)
        rebuild = self._to_rebuild(plan, values, found)
        with UndoLog() as undo:
            for (section, name), group_values in values.items():
                if section == "populations":
                    with _refused(nest, plan, name):
                        restore_group(self.populations[name], group_values, found.status.get(name), undo)
            rebuilt = set()
            for name, connectivity in rebuild.items():  # every value given to one array Connect
                projection = found.projections[name]
                with _refused(nest, plan, name):
                    current = found.connections[projection.synapse_model].capture(projection)
                    rebuild_projection(projection, current, connectivity, values.get(("projections", name), {}), undo)
                rebuilt.add(projection.synapse_model)
            for model, connections in list(found.connections.items()):
                mine = {
                    found.projections[name]: v
                    for (section, name), v in values.items()
                    if section == "projections"
                    and name not in rebuild
                    and found.projections[name].synapse_model == model
                }
                if not any(mine.values()):
                    continue
                if model in rebuilt:  # its SynapseCollection went stale: read it again, once
                    connections = found.connections[model] = Connections(nest.GetConnections(synapse_model=model))
                with _refused(nest, plan, ", ".join(p.name for p in mine)):
                    connections.set(mine, undo)
            if plan.clock is not None and self.content == "network":
                undo.add(self.restore_clock(plan))
        return undo

    def restore_clock(self, plan):
        """Keep the file's time as an offset and reseed: the last step of a
        restore (a seam where the tests inject a failure midway)."""
        return restore_clock(plan)

    def _to_rebuild(self, plan, values, found):
        """``{projection name: (indptr, indices)}`` of the connections a load
        replaces: other connectivity, or other receptor ports.  Raises, before
        any change, for connections NEST cannot delete (from a device)."""
        rebuild = dict(plan.connectivity)
        for (section, name), group_values in values.items():
            projection = found.projections.get(name) if section == "projections" else None
            if projection is not None:
                check_receptors(group_values, plan.report.path, name)
            connections = projection and found.connections[projection.synapse_model]
            if (
                projection is not None
                and name not in rebuild
                and RECEPTOR in group_values
                and connections.receptors_differ(projection, group_values[RECEPTOR])
            ):
                current = connections.capture(projection)
                rebuild[name] = (current.indptr, current.indices)
        for name in rebuild:
            projection = found.projections[name]
            check_rebuild(projection, plan.report.path)
            if projection.pre.element_type != "neuron" and len(
                found.connections[projection.synapse_model].positions(projection)
            ):
                raise StructureMismatchError(
                    f"the connections from {projection.pre.name} differ from the file's, and NEST cannot "
                    "delete connections from a device: build them as the saved run did (the same rng_seed "
                    "and calls)",
                    path=plan.report.path,
                    obj=name,
                )
        return rebuild


@contextlib.contextmanager
def _refused(nest, plan, name):
    """A value NEST refuses becomes a StructureMismatchError naming the object
    (NEST raises NESTError, and IndexError or ValueError from its Python
    layer, e.g. for a negative receptor port)."""
    try:
        yield
    except (nest.NESTError, IndexError, ValueError, TypeError, KeyError) as exc:
        raise StructureMismatchError(
            f"NEST refused the file's values: {exc}", path=plan.report.path, obj=name
        ) from None
