"""The names of a sharded checkpoint's files, in one place.

A checkpoint saved by N MPI ranks is a manifest at ``path`` and one shard
per rank in the folder beside it::

    run.h5.shards/<token>.rank-<r>-of-<N><suffix>

The writer (:mod:`checkpoint.distributed`), the reader that checks the
manifest's list, and the Checkpointer's folder (:mod:`checkpoint.folder`),
which deletes only shards its ledger names, all use these functions.
"""

import os
import re

__all__ = ["FOLDER", "folder_of", "shard_path", "parse", "listed_name_pattern"]

#: suffix of the folder beside a manifest that holds its shards
FOLDER = ".shards"

_FILE = re.compile(r"^(?P<token>[0-9a-f]+)\.rank-(?P<rank>[0-9]+)-of-(?P<ranks>[0-9]+)(?P<suffix>\.[A-Za-z0-9_.]+)\Z")


def folder_of(path):
    """The shard folder of the manifest at ``path``."""
    return os.fspath(path) + FOLDER


def shard_path(path, token, rank, ranks, suffix):
    """Where rank ``rank`` of ``ranks`` writes its shard of the checkpoint at ``path``."""
    return os.path.join(folder_of(path), f"{token}.rank-{rank}-of-{ranks}{suffix}")


def parse(name):
    """``(token, rank, ranks)`` of a shard file's base name, or None when it is not one."""
    match = _FILE.match(name)
    return None if match is None else (match["token"], int(match["rank"]), int(match["ranks"]))


def listed_name_pattern(path, token, rank, ranks):
    """The regular expression a manifest's ``files`` entry for ``rank`` must
    match fully: in this checkpoint's shard folder, of this token and rank."""
    folder = os.path.basename(os.path.abspath(folder_of(path)))
    return rf"{re.escape(folder)}/{re.escape(token)}\.rank-{rank}-of-{ranks}[.\w]+"
