"""What ties a result to its network: its fingerprint, and digests of files for caches keyed by content.

`network_fingerprint(network)` hashes what the network computes with: its layer widths, every block's mask
and kept weights (float32, zero where masked, so whatever a checkpoint holds under its mask does not count),
the biases (float32), and batch norms and raw conv kernels where the network has them. Skip blocks without a
kept edge are left out (a graph file has no such block). The same network read from our model.pt, a published
.npz or a graph file written by export_graph (all store float32 values exactly) has the same fingerprint.

Every result file records `network_record(network)`: {"fingerprint", "source"}. Readers of a partition or a
cache compare the recorded fingerprint with the network they analyse (`check_same_network`) and refuse, in
one line naming both, a result of another network.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from utils.errors import InputError

FINGERPRINT_CHARS = 16  # hex characters kept (64 bits): enough to tell networks apart, short to read
_CHUNK = 1 << 20


def _update(digest, tag: str, array) -> None:
    """Feed a tag, the shape and the little-endian bytes of `array` (dtype fixed by the caller)."""
    array = np.ascontiguousarray(array)
    digest.update(f"{tag}{array.shape}".encode())
    digest.update(array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes())


def state_fingerprint(arrays: dict) -> str:
    """Hex digest (FINGERPRINT_CHARS characters) of a whole state_dict given as numpy arrays {key: array}:
    for a network whose graph view does not hold every weight (a cell network's cell graph)."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        array = np.asarray(arrays[key])
        _update(digest, f"{key} {array.dtype.str}", array)
    return digest.hexdigest()[:FINGERPRINT_CHARS]


def network_fingerprint(network) -> str:
    """Hex digest (FINGERPRINT_CHARS characters) of a LayeredNetwork's widths, masks, kept weights, biases,
    batch norms and conv kernels (see the module docstring); a view of a larger model (a cell graph) carries
    its model's state fingerprint in layout["state_fingerprint"]."""
    if "state_fingerprint" in network.layout:
        return str(network.layout["state_fingerprint"])
    digest = hashlib.sha256()
    digest.update(("arch " + " ".join(map(str, network.arch))).encode())
    skips = sorted(network.skips, key=lambda b: (b.source, b.target))
    own = network.blocks()[: network.depth]
    for block in own + [b for b in skips if np.asarray(b.mask).any()]:
        mask = np.asarray(block.mask) != 0
        # where the mask keeps nothing the weight is 0; + 0 turns -0.0 into 0.0
        kept = np.where(mask, np.asarray(block.weight, np.float32), np.float32(0)) + np.float32(0)
        _update(digest, f"mask {block.source}>{block.target}", np.packbits(mask, axis=None))
        _update(digest, f"weight {block.source}>{block.target}", kept.astype(np.float32))
    for i, bias in enumerate(network.biases):
        _update(digest, f"bias {i}", np.asarray(bias, np.float32) + np.float32(0))
    for i, norm in enumerate(network.norms):
        if norm is not None:
            for name in ("gamma", "beta", "mean", "var"):
                _update(digest, f"norm {i} {name}", np.asarray(norm[name], np.float32))
            digest.update(f"eps {float(norm.get('eps', 1e-5))!r}".encode())
    for i, kernel in enumerate(network.kernels):
        if kernel is not None:
            _update(digest, f"kernel {i}", np.asarray(kernel, np.float32))
    return digest.hexdigest()[:FINGERPRINT_CHARS]


def source_text(source) -> str:
    """An absolute path for a file or folder that exists, else the text as given ("model", ...)."""
    if not source:
        return ""
    path = Path(str(source))
    try:
        return str(path.resolve()) if path.exists() else str(source)
    except OSError:
        return str(source)


def network_record(network) -> dict:
    """{"fingerprint", "source"}: what every result file records about the network it was computed on."""
    return {"fingerprint": network.fingerprint, "source": source_text(network.source)}


def recorded_network(data) -> dict:
    """The {"fingerprint", "source"} record of a result's JSON, or {} when it has none (older files)."""
    record = data.get("network") if isinstance(data, dict) else None
    if isinstance(record, dict) and isinstance(record.get("fingerprint"), str):
        return {"fingerprint": record["fingerprint"], "source": str(record.get("source", ""))}
    return {}


def check_same_network(record: dict, network, what: str) -> None:
    """InputError (one line naming both networks) when `record` (from recorded_network) belongs to another
    network than `network`. `what`: the file the record comes from, e.g. "partition modules.json".
    A record without a fingerprint passes (files written before fingerprints were recorded)."""
    if not record or record.get("fingerprint") is None:
        return
    mine = network.fingerprint
    if record["fingerprint"] == mine:
        return
    theirs = record.get("source") or "an unknown file"
    here = source_text(network.source)
    if theirs == here:
        raise InputError(
            f"{what} belongs to another network: {here} has changed since it was computed (fingerprint "
            f"{record['fingerprint']} then, {mine} now); compute it again on this network"
        )
    raise InputError(
        f"{what} belongs to another network: it was computed on {theirs} (fingerprint "
        f"{record['fingerprint']}), but the network here is {here or 'given'} (fingerprint {mine}); "
        "use the result computed on this network"
    )


def file_digest(path) -> str:
    """sha256 hex of a file's bytes (read in chunks): a cache key that follows the content, not the mtime."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
