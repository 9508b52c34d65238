"""The clock and the globals of a NEURON run: ``t``, ``dt``, CVODE, the
temperature and every mechanism's GLOBAL variables (``nai0_na_ion``...),
saved as the ``NEURON`` population's global parameters."""

import numpy as np

#: global scalars a restart needs, as the NEURON population's arrays
GLOBALS = ("celsius", "secondorder", "cvode_active", "cvode_atol")


def read(h):
    cvode = h.CVode()
    return {
        "celsius": float(h.celsius),
        "secondorder": float(h.secondorder),
        "cvode_active": float(cvode.active()),
        "cvode_atol": float(cvode.atol()),
        **mechanism_globals(h),
    }


def mechanism_globals(h):
    """``{name: value}`` of the scalar GLOBAL variables of every mechanism loaded."""
    out, name = {}, h.ref("")
    for kind in (0, 1):
        types = h.MechanismType(kind)
        for i in range(int(types.count())):
            types.select(i)
            types.selected(name)
            standard = h.MechanismStandard(name[0], -1)
            for j in range(int(standard.count())):
                if int(standard.name(name, j)) == 1:
                    out[name[0]] = float(getattr(h, name[0]))
    return out


def write(h, values):
    """Set the globals in ``values``; returns the undo."""
    before = read(h)
    _set(h, values)
    return lambda: _set(h, before)


def _set(h, values):
    cvode = h.CVode()
    for key in set(values) - set(GLOBALS) & set(mechanism_globals(h)):  # only the model's own names
        setattr(h, key, float(np.asarray(values[key]).reshape(-1)[0]))
    if "celsius" in values:
        h.celsius = float(np.asarray(values["celsius"]).reshape(-1)[0])
    if "secondorder" in values:
        h.secondorder = int(np.asarray(values["secondorder"]).reshape(-1)[0])
    if "cvode_atol" in values:
        cvode.atol(float(np.asarray(values["cvode_atol"]).reshape(-1)[0]))
    if "cvode_active" in values:
        cvode.active(int(np.asarray(values["cvode_active"]).reshape(-1)[0]))


def now(h):
    """``(t, step, dt)``: NEURON counts no steps; ``step`` is ``t / dt`` rounded
    (the fixed-step count; with CVODE, the time in units of ``dt``)."""
    t, dt = float(h.t), float(h.dt)
    return t, int(round(t / dt)), dt


def set_time(h, t, dt):
    before = (float(h.t), float(h.dt))
    h.t, h.dt = float(t), float(dt)

    def undo():
        h.t, h.dt = before

    return undo
