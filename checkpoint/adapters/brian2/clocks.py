"""Brian2's clocks and the network's ``t``: read for a save, and restored
(each clock's ``dt`` and ``timestep``), as ``Network.store``/``restore`` do;
and the schema of the ``meta["brian2"]`` they are saved in."""

from ...formats.schema import is_int, is_number, optional, require
from .objects import all_objects

#: ``meta["brian2"]`` key of the SpikeGeneratorGroups' Python-side flags
#: (see :mod:`.groups`)
SPIKE_GENERATORS = "spike_generators"


def read_clocks(network, groups, objects=None):
    """``(t in s, step, dt in s, {clock: {timestep, dt}})``.  A network's
    clocks (those of ``objects``, by default its own objects') are brought
    up to its time first, as ``Network.store`` does; a group on its own
    (``network`` None) reports its own clock."""
    if network is None:
        clock = groups[0].clock
        return (
            float(clock.variables["t"].get_value().item()),
            int(clock.variables["timestep"].get_value().item()),
            float(clock.dt_),
            {},
        )
    clocks = {o.clock for o in (all_objects(network) if objects is None else objects)}
    for clock in clocks:
        clock._set_t_update_dt(target_t=network.t)
    by_name = {
        c.name: {"timestep": int(c.variables["timestep"].get_value().item()), "dt": float(c.dt_)} for c in clocks
    }
    main = by_name.get("defaultclock") or (min(by_name.values(), key=lambda c: c["dt"]) if by_name else None)
    return (float(network.t_), main["timestep"] if main else 0, main["dt"] if main else None, by_name)


def validate_meta(meta, path):
    """``meta["brian2"]`` of a file: its types and ranges, before anything uses it."""
    brian2 = meta.get("brian2") or {}
    require(isinstance(brian2, dict), "meta 'brian2' is not an object", path)
    optional(brian2, "t", is_number, "a finite number of seconds", path)
    clocks = brian2.get("clocks") or {}
    require(
        isinstance(clocks, dict)
        and all(
            isinstance(c, dict)
            and is_int(c.get("timestep"))
            and 0 <= c["timestep"] < 2**63
            and is_number(c.get("dt"))
            and c["dt"] > 0
            for c in clocks.values()
        ),
        "meta 'brian2.clocks' is not {name: {timestep, dt}}",
        path,
    )
    generators = brian2.get(SPIKE_GENERATORS) or {}
    require(
        isinstance(generators, dict)
        and all(
            isinstance(g, dict)
            and isinstance(g.get("spikes_changed"), bool)
            and (g.get("previous_dt") is None or (is_number(g["previous_dt"]) and g["previous_dt"] > 0))
            for g in generators.values()
        ),
        "meta 'brian2.spike_generators' is not {name: {spikes_changed, previous_dt}}",
        path,
    )


def restore_clocks(net, plan, objects=None):
    saved = plan.file_meta.get("brian2") or {}
    clocks = {c.name: c for c in {o.clock for o in (all_objects(net) if objects is None else objects)}}
    if "t" in saved:
        net.t_ = float(saved["t"])
    else:
        net.t_ = float(plan.clock["time"]) / 1e3
    for name, entry in (saved.get("clocks") or {}).items():
        clock = clocks.get(name)
        if clock is None or not isinstance(entry, dict):
            continue
        clock.dt_ = float(entry["dt"])  # as Brian2's restore() does: dt is the clock's state
        clock.variables["timestep"].set_value(int(entry["timestep"]))
        clock.variables["t"].set_value(int(entry["timestep"]) * float(clock.dt_))
    if not saved.get("clocks"):
        for clock in clocks.values():
            clock._set_t_update_dt(target_t=net.t)
