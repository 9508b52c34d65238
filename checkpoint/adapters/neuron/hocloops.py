"""Loops over many NEURON objects run in hoc, with their results in Vectors.

One Python call per object and attribute (``nc.pre()``, ``nc.weight[0]``,
``sec.has_membrane(m)``) costs about a microsecond each, and a model of
1,000 cells has thousands of NetCons, point processes and sections: the
same loop in hoc is one call and several times faster.  Objects are named
by their address (hoc's ``object_id``, Python's ``hocobjptr``; a section's
``this_section``, the address in ``hoc_internal_name``).  Only names from
the model's own MechanismType are ever written into hoc code.
"""

import re

import numpy as np

#: a name that may be written into hoc code
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_LINKS = """proc checkpoint_links_() { local i, x  localobj nc
  for i = 0, $o1.count() - 1 {
    nc = $o1.o(i)
    $o2.x[i] = object_id(nc)  $o3.x[i] = object_id(nc.pre())  $o4.x[i] = object_id(nc.syn())
    $o5.x[i] = nc.srcgid()  x = -1
    if ($o3.x[i] == 0) {
      x = nc.preloc()
      if (x != -1) { $o7.x[i] = this_section()  $o8.x[i] = nseg  pop_section() }
    }
    $o6.x[i] = x
  }
}
"""

_POINTS = """proc checkpoint_points_() { local i, x  localobj pp
  for i = 0, $o1.count() - 1 {
    pp = $o1.o(i)
    $o2.x[i] = object_id(pp)  x = -1
    if (pp.has_loc()) { x = pp.get_loc()  $o4.x[i] = this_section()  $o5.x[i] = nseg  pop_section() }
    $o3.x[i] = x
  }
}
"""

#: NetCon values, variable-major: weight[0..$3-1], delay, threshold, active,
#: of the NetCons $o4 indexes in the List $o1 ($o5 in the write)
_NC_READ = """proc checkpoint_nc_read_() { local i, k, n  localobj nc
  n = $o4.size()
  for i = 0, n - 1 {
    nc = $o1.o($o4.x[i])
    for k = 0, $3 - 1 { $o2.x[k * n + i] = nc.weight[k] }
    $o2.x[$3 * n + i] = nc.delay  $o2.x[($3 + 1) * n + i] = nc.threshold  $o2.x[($3 + 2) * n + i] = nc.active()
  }
}
"""

#: the same, set where the mask $o4 (one per variable) is 1
_NC_WRITE = """proc checkpoint_nc_write_() { local i, k, n  localobj nc
  n = $o5.size()
  for i = 0, n - 1 {
    nc = $o1.o($o5.x[i])
    for k = 0, $3 - 1 { if ($o4.x[k]) { nc.weight[k] = $o2.x[k * n + i] } }
    if ($o4.x[$3]) { nc.delay = $o2.x[$3 * n + i] }
    if ($o4.x[$3 + 1]) { nc.threshold = $o2.x[($3 + 1) * n + i] }
    if ($o4.x[$3 + 2]) { nc.active($o2.x[($3 + 2) * n + i]) }
  }
}
"""


#: the membrane procs defined, by their loop
_MEMBRANES: dict = {}


def _define(h, name, code):
    if not hasattr(h, name):
        h(code)
    return getattr(h, name)


def _vectors(h, count, n):
    return [h.Vector(n) for _ in range(count)]


def _ints(vector):
    return vector.as_numpy().astype(np.int64)


def section_pointers(sections):
    """The address of each section, as hoc's ``this_section`` gives it."""
    return [int(sec.hoc_internal_name().rpartition("_0x")[2], 16) for sec in sections]


def links(h, netcons):
    """``(ptr, pre_ptr, syn_ptr, srcgid, x, sec_ptr, nseg)`` arrays of the
    NetCons of a hoc List: ``x`` -1 where the source is no section's
    (a point process, or none)."""
    n = int(netcons.count())
    out = _vectors(h, 7, n)
    _define(h, "checkpoint_links_", _LINKS)(netcons, *out)
    ptr, pre, syn, gid, x, sec, nseg = out
    return _ints(ptr), _ints(pre), _ints(syn), _ints(gid), x.as_numpy().copy(), _ints(sec), _ints(nseg)


def points(h, members):
    """``(ptr, x, sec_ptr, nseg)`` arrays of the point processes of a hoc
    List: ``x`` -1 where one has no location (an artificial cell)."""
    n = int(members.count())
    out = _vectors(h, 4, n)
    _define(h, "checkpoint_points_", _POINTS)(members, *out)
    ptr, x, sec, nseg = out
    return _ints(ptr), x.as_numpy().copy(), _ints(sec), _ints(nseg)


def membranes(h, mechanisms, count):
    """A ``(sections, mechanisms)`` bool matrix of ``ismembrane`` over
    ``forall`` (h.allsec()'s order) and each section's address; None where
    a name cannot go into hoc code."""
    if not all(NAME.match(m) for m in mechanisms):
        return None
    width = len(mechanisms) + 1
    if not hasattr(h, "checkpoint_vec_"):
        h("objref checkpoint_vec_")
    tests = " ".join(f'checkpoint_vec_.x[i + {k + 1}] = ismembrane("{m}")' for k, m in enumerate(mechanisms))
    # a global objref: a $o argument inside forall is corrupted in NEURON 9
    body = f"forall {{ checkpoint_vec_.x[i] = this_section() {tests}  i += {width} }}"
    name = _MEMBRANES.get(body)
    if name is None:  # one proc per list of mechanisms (a process loads more), named by a count
        name = f"checkpoint_membranes_{len(_MEMBRANES)}_"
        h(f"proc {name}() {{ local i\n i = 0\n {body}\n}}\n")
        _MEMBRANES[body] = name
    h.checkpoint_vec_ = h.Vector(count * width)
    try:
        getattr(h, name)()
        table = h.checkpoint_vec_.as_numpy().copy().reshape(count, width)
    finally:
        h.checkpoint_vec_ = None
    return table[:, 1:] != 0, table[:, 0].astype(np.int64)


_ADDRESSES = """proc checkpoint_addresses_() { local i
  for i = 0, $o1.count() - 1 { $o2.x[i] = object_id($o1.o(i)) }
}
"""


def addresses(h, hoc_list):
    """The addresses of the objects of a hoc List (a list of ints)."""
    out = h.Vector(int(hoc_list.count()))
    _define(h, "checkpoint_addresses_", _ADDRESSES)(hoc_list, out)
    return _ints(out).tolist()


def read_netcons(h, hoc_list, index, weights):
    """``(weights + 3, n)`` array: the weights, delay, threshold, active of
    the NetCons ``index`` (a Vector) picks from ``hoc_list``."""
    n = int(index.size())
    buffer = h.Vector((weights + 3) * n)
    _define(h, "checkpoint_nc_read_", _NC_READ)(hoc_list, buffer, weights, index)
    return buffer.as_numpy().copy().reshape(weights + 3, n)


def write_netcons(h, hoc_list, index, weights, table, mask):
    """Set the rows of ``table`` (as :func:`read_netcons`) where ``mask``."""
    _define(h, "checkpoint_nc_write_", _NC_WRITE)(
        hoc_list, h.Vector(table.reshape(-1)), weights, h.Vector(np.asarray(mask, np.float64)), index
    )


def _streams_proc(h, name, write):
    """The hoc loop over the NMODLRandom ``name`` of the points $o2 indexes in the List $o1."""
    proc = f"checkpoint_streams_{'set' if write else 'get'}_{name}_"
    if write:
        body = (
            f"r = $o1.o($o2.x[i]).{name}  r.set_ids($o3.x[i], $o3.x[n + i], $o3.x[2 * n + i])  "
            "r.set_seq($o3.x[3 * n + i])"
        )
    else:
        body = (
            f"r = $o1.o($o2.x[i]).{name}  v = r.get_ids()  $o3.x[i] = v.x[0]  $o3.x[n + i] = v.x[1]  "
            "$o3.x[2 * n + i] = v.x[2]  $o3.x[3 * n + i] = r.get_seq()"
        )
    code = f"proc {proc}() {{ local i, n  localobj r, v\n n = $o2.size()\n for i = 0, n - 1 {{ {body} }}\n}}\n"
    return _define(h, proc, code)


def read_streams(h, hoc_list, index, name):
    """``(4, n)`` array: id1, id2, id3 and seq of the streams ``name``."""
    n = int(index.size())
    out = h.Vector(4 * n)
    _streams_proc(h, name, False)(hoc_list, index, out)
    return out.as_numpy().copy().reshape(4, n)


def write_streams(h, hoc_list, index, name, table):
    """Set the streams ``name`` from a :func:`read_streams`-shaped array."""
    _streams_proc(h, name, True)(hoc_list, index, h.Vector(np.asarray(table, np.float64).reshape(-1)))
