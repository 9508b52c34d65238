"""The native writes one restore makes: computed and checked up front,
before anything changes, dispatched on each array's scope in the model;
then applied, and put back, by the adapter."""

import numpy as np

from ...errors import CorruptCheckpointError
from .connectivity import LilCsr, current_csr, read_lil
from .native import level_counts
from .objects import LENGTHS, global_name, population
from .queues import IN_FLIGHT, delay_queue_layout, in_flight_layout, in_flight_triples


#: the most bytes a file's longer delays may add to one object's delay queues
MAX_GROWTH = 1 << 30


class Writes:
    """The writes of one restore.

    Parameters
    ----------
    native : NativeState
        The network's accessor.
    dt : float
        The network's time step (ms).
    objects : dict
        ``{(section, name): ANNarchy object}`` of the model.
    findings : Findings
        What ``describe`` found: each array's scope, each projection's rows.
    by_object : dict
        ``plan.by_object()``, monitors taken out.
    plan : Plan
    """

    def __init__(self, native, dt, objects, findings, by_object, plan):
        self.native, self.dt, self.path = native, dt, plan.report.path
        self.objects, self.findings = objects, findings
        self.connectivity = {}     # global name -> (post_rank, row_lengths, pre_rank)
        self.fields = []           # [(Field, (lengths, flat))]
        self.max_delay = {}        # ANNarchy object -> new max_delay (steps)
        self.uniform_delay = {}    # Projection -> new uniform delay (steps)
        self.written = set()       # field indices written
        for (section, name), values in by_object.items():
            if section == "projections":
                self._projection(name, values, name in plan.connectivity and plan.connectivity[name])
        for (section, name), values in by_object.items():
            if section == "populations":
                self._population(name, values)
        for ann_obj, steps in list(self.max_delay.items()):
            if steps > ann_obj.max_delay:
                self._resize_delay_buffers(ann_obj)

    # -- projections ----------------------------------------------------------

    def _projection(self, name, values, connectivity):
        proj = self.objects[("projections", name)]
        obj = global_name(proj)
        fields, info = self.native.fields[obj], self.findings.info[("projections", name)]
        csr = self.findings.csr[name]
        if connectivity:
            indptr, indices = connectivity
            csr = LilCsr.from_csr(indptr)
            self.connectivity[obj] = (csr.post_rank, csr.row_lengths, np.asarray(indices, np.int32))
        for var, value in values.items():
            field = fields.get(var)
            if field is None or var == IN_FLIGHT:
                continue   # a .lengths companion, or the ring buffer (after the delays)
            scope = info[var].scope
            if var == "delay":
                self._delays(proj, field, value, csr)
            elif scope == "synapse":
                self._write(field, csr.lil_lengths(), csr.to_lil(value))
            elif scope == "post":
                self._write(field, [len(csr.post_rank)], np.asarray(value)[csr.post_rank])
            elif scope == "global":
                self._write(field, [], np.asarray(value).reshape(1))
            else:
                self._write(field, *self._layout(field, values, var, name))
        rebuilt = obj in self.connectivity
        if IN_FLIGHT in fields and (IN_FLIGHT in values or rebuilt):
            self._in_flight(proj, values.get(IN_FLIGHT), csr)

    def _delays(self, proj, field, value, csr):
        steps = np.rint(np.asarray(value, np.float64) / self.dt).reshape(-1)
        if len(steps) and (not np.all(np.isfinite(steps)) or steps.min() < 1 or steps.max() > 2 ** 30):
            raise CorruptCheckpointError("delays must be finite and at least one time step",
                                         path=self.path, obj=f"{proj.name}.delay")
        steps = steps.astype(field.dtype)
        if field.depth == 2:
            self._write(field, csr.lil_lengths(), csr.to_lil(steps))
        else:
            self._write(field, [], steps[:1])
            self.uniform_delay[proj] = int(steps[0])
        pre = population(proj.pre)
        needed = int(steps.max()) if len(steps) else 1
        self._check_growth(pre, needed)   # before any queue is sized by it
        self.max_delay[pre] = max(self.max_delay.get(pre, pre.max_delay), needed)
        if IN_FLIGHT in self.native.fields[global_name(proj)]:
            self._check_growth(proj, needed)
            self.max_delay[proj] = max(self.max_delay.get(proj, proj.max_delay), needed)

    def _in_flight(self, proj, triples, csr):
        """Spikes in a projection's ring buffer; written with idx_delay 0."""
        fields = self.native.fields[global_name(proj)]
        slots = max(self.max_delay.get(proj, proj.max_delay), 1)
        lengths, flat = in_flight_layout(triples, csr, slots, self.path, f"{proj.name}.{IN_FLIGHT}")
        self._write(fields[IN_FLIGHT], lengths, flat)
        self._write(fields["idx_delay"], [], [0])
        self.max_delay[proj] = slots

    # -- populations ----------------------------------------------------------

    def _population(self, name, values):
        pop = self.objects[("populations", name)]
        fields, info = self.native.fields[global_name(pop)], self.findings.info[("populations", name)]
        for var, value in values.items():
            field = fields.get(var)
            if field is None:
                continue   # a .lengths companion
            scope = info[var].scope
            if scope == "global":
                self._write(field, [], np.asarray(value).reshape(1))
            elif scope == "neuron":
                self._write(field, [pop.size], value)
            elif var.startswith("_delayed_") and field.depth == 2:
                self._delay_queue(pop, field, *self._layout(field, values, var, pop.name))
            else:
                self._write(field, *self._layout(field, values, var, pop.name))
        spiked = values.get("spiked")
        if spiked is not None and len(spiked) and (np.min(spiked) < 0 or np.max(spiked) >= pop.size):
            raise CorruptCheckpointError("a spiking neuron's rank is out of range",
                                         path=self.path, obj=f"{pop.name}.spiked")

    def _delay_queue(self, pop, field, lengths, flat):
        wanted = max(self.max_delay.get(pop, pop.max_delay), 0)
        self._write(field, *delay_queue_layout(pop.size, field, lengths, flat, wanted, self.path,
                                               f"{pop.name}.{field.name}"))

    def _check_growth(self, ann_obj, steps):
        """A file's delays declare how long the delay queues grow, which the
        bytes it stores do not bound: refuse a growth beyond :data:`MAX_GROWTH`
        bytes before anything is allocated."""
        per_step = 0   # bytes one more step of delay costs
        for name, f in self.native.fields[global_name(ann_obj)].items():
            if not name.startswith("_delayed_") or f.depth < 2:
                continue
            if f.depth == 2:   # a population's queue: a row of spikes, or of values, per step
                per_step += 24 + (f.dtype.itemsize * ann_obj.size if f.dtype.kind == "f" else 0)
            else:              # a projection's ring buffer: a slot of one row per dendrite
                per_step += 24 * (1 + ann_obj.size)
        growth = max(steps - int(ann_obj.max_delay), 0) * per_step   # Python integers
        if growth > MAX_GROWTH:
            raise CorruptCheckpointError(
                f"the file's delays ({steps} steps) would grow {ann_obj.name}'s delay queues, of "
                f"{ann_obj.max_delay} steps, by {growth / 2 ** 30:.1f} GiB; build the network with its "
                "longest delays", path=self.path, obj=f"{ann_obj.name}.delay")

    def _resize_delay_buffers(self, ann_obj):
        """A longer max_delay needs longer queues even where the file has none."""
        fields = self.native.fields[global_name(ann_obj)]
        for name, field in fields.items():
            if field.index in self.written:
                continue
            if name.startswith("_delayed_") and field.depth == 2 and name != IN_FLIGHT:
                self._delay_queue(ann_obj, field, *self.native.read(field))
            elif name == IN_FLIGHT:
                csr = self.findings.csr.get(ann_obj.name) or current_csr(self.native, ann_obj)
                idx = int(self.native.read(fields["idx_delay"])[1][0])
                self._in_flight(ann_obj, in_flight_triples(*self.native.read(field), idx, csr.post_rank), csr)

    # -- generic ---------------------------------------------------------------

    def _layout(self, field, values, var, obj):
        """The (lengths, flat) of a nested field from the file, checked."""
        flat = np.asarray(values[var])
        if field.depth <= 1:
            return ([len(flat)] if field.depth == 1 else []), flat.reshape(-1)
        lengths = values.get(var + LENGTHS)
        label = f"{obj}.{var}"
        if lengths is None:
            raise CorruptCheckpointError(f"{var}{LENGTHS} is missing", path=self.path, obj=label)
        lengths = np.asarray(lengths)
        counts = level_counts(lengths.astype(np.int64), field.depth) if lengths.dtype.kind in "iu" else None
        if counts is None or counts[-1] != flat.size:
            raise CorruptCheckpointError("the nested lengths do not fit the values", path=self.path, obj=label)
        return lengths.astype(np.int64), flat.reshape(-1)

    def _write(self, field, lengths, flat):
        lengths, flat = np.asarray(lengths, np.int64), np.asarray(flat)
        counts = level_counts(lengths, field.depth)
        if counts is None or counts[-1] != flat.size:  # a bug, not a bad file: all checked above
            raise AssertionError(f"bad layout for {field.object}.{field.name}")
        self.fields = [(f, v) for f, v in self.fields if f.index != field.index] + [(field, (lengths, flat))]
        self.written.add(field.index)

    # -- applying and putting back --------------------------------------------

    def apply(self):
        """Write everything (each change's undo is taken first by :meth:`undo_record`)."""
        for obj, lil in self.connectivity.items():
            self.native.set_lil(obj, *lil)
        for field, (lengths, flat) in self.fields:
            self.native.write(field, lengths, flat)
        for ann_obj, steps in self.max_delay.items():
            field = self.native.fields[global_name(ann_obj)].get("max_delay")
            if field is not None:
                self.native.write(field, np.zeros(0, np.int64), np.array([steps], field.dtype))
            ann_obj.max_delay = steps
        for proj, steps in self.uniform_delay.items():
            proj.uniform_delay = steps

    def undo_record(self):
        """A callable that puts back, as they are now, every field, row and
        Python attribute that :meth:`apply` changes."""
        saved = [(field, self.native.read(field)) for field in self._touched_fields()]
        connectivity = {obj: read_lil(self.native, obj) for obj in self.connectivity}
        max_delay = {o: o.max_delay for o in self.max_delay}
        uniform = {p: p.uniform_delay for p in self.uniform_delay}

        def undo():
            for obj, lil in connectivity.items():
                self.native.set_lil(obj, *lil)
            for field, (lengths, flat) in saved:
                self.native.write(field, lengths, flat)
            for o, v in max_delay.items():
                o.max_delay = v
            for p, v in uniform.items():
                p.uniform_delay = v
        return undo

    def _touched_fields(self):
        """Every field a write, a rebuild or a new max_delay changes."""
        touched = {f.index: f for f, _ in self.fields}
        for obj in self.connectivity:
            touched.update({f.index: f for f in self.native.fields[obj].values() if f.depth >= 0})
        for ann_obj in self.max_delay:
            field = self.native.fields[global_name(ann_obj)].get("max_delay")
            if field is not None:
                touched[field.index] = field
        return list(touched.values())
