"""A LIL projection's connectivity: ANNarchy's rows of synapses against
the canonical CSR by post neuron (synapses of one post neuron keep
ANNarchy's order, so a restore rebuilds ANNarchy's exact structure)."""

import numpy as np

from .objects import global_name, population


class LilCsr:
    """ANNarchy's LIL (rows = post neurons with synapses, in ANNarchy's order)
    against the canonical CSR (every post neuron, ascending)."""

    def __init__(self, post_rank, row_lengths, n_post):
        self.post_rank = np.asarray(post_rank, np.int64)
        self.row_lengths = np.asarray(row_lengths, np.int64)
        counts = np.zeros(n_post, np.int64)
        counts[self.post_rank] = self.row_lengths
        self.indptr = np.concatenate([[0], np.cumsum(counts)])
        self.sorted = bool(np.all(np.diff(self.post_rank) > 0))
        self.perm = None if self.sorted else self._permutation()

    @classmethod
    def from_csr(cls, indptr):
        counts = np.diff(np.asarray(indptr, np.int64))
        post_rank = np.flatnonzero(counts)
        return cls(post_rank, counts[post_rank], len(counts))

    def _permutation(self):
        """For each CSR position, the synapse's position in ANNarchy's order."""
        starts = np.concatenate([[0], np.cumsum(self.row_lengths)[:-1]])
        order = np.argsort(self.post_rank, kind="stable")
        blocks = [np.arange(starts[r], starts[r] + self.row_lengths[r]) for r in order]
        return np.concatenate(blocks) if blocks else np.zeros(0, np.int64)

    def lil_lengths(self):
        return np.concatenate([[len(self.post_rank)], self.row_lengths]).astype(np.int64)

    def to_csr(self, flat):
        return flat if self.perm is None else flat[self.perm]

    def to_lil(self, values):
        values = np.asarray(values)
        if self.perm is None:
            return values
        out = np.empty_like(values)
        out[self.perm] = values
        return out

    def to_post(self, per_row):
        out = np.zeros(len(self.indptr) - 1, per_row.dtype)
        out[self.post_rank] = per_row
        return out


def read_lil(native, obj):
    """A LIL projection's ``(post_rank, row_lengths, pre_rank)`` as ANNarchy holds them."""
    fields = native.fields[obj]
    post_rank = native.read(fields["post_rank"])[1]
    lengths, pre_rank = native.read(fields["pre_rank"])
    return post_rank, lengths[1:], pre_rank


def current_csr(native, proj):
    """The :class:`LilCsr` of ``proj`` as it is now."""
    post_rank, row_lengths, _ = read_lil(native, global_name(proj))
    return LilCsr(post_rank, row_lengths, population(proj.post).size)
