"""Layered module picture (PNG) and GraphML export: exact graph contents, valid pictures, atomic writes."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import matplotlib.figure
import networkx as nx
import numpy as np
import pytest

from detection_pipeline import draw as draw_mod
from detection_pipeline.draw import draw_modules
from detection_pipeline.export import build_graph, kept_layer_edges, split_partition, write_graphml
from utils.errors import OutputError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# arch 4 -> 3 -> 2; input 3 and hidden 2 are dropped, so every edge touching them must vanish.
ARCH = [4, 3, 2]
MASKS = [
    np.array([[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 0, 1]], dtype=np.uint8),
    np.array([[1, 0, 1], [0, 1, 1]], dtype=np.uint8),
]
WEIGHTS = [np.arange(12.0).reshape(3, 4) * 0.5 + 0.25, -(np.arange(6.0).reshape(2, 3) + 1.0)]
PARTITION = np.array([0, 0, 1, -1, 0, 1, -1, 0, 1])
EXPECTED_NODES = {
    "L0_0": (0, 0, 0),
    "L0_1": (0, 1, 0),
    "L0_2": (0, 2, 1),
    "L1_0": (1, 0, 0),
    "L1_1": (1, 1, 1),
    "L2_0": (2, 0, 0),
    "L2_1": (2, 1, 1),
}
EXPECTED_EDGES = {
    ("L0_0", "L1_0"): 0.25,
    ("L0_1", "L1_0"): 0.75,
    ("L0_2", "L1_1"): 3.25,
    ("L1_0", "L2_0"): -1.0,
    ("L1_1", "L2_1"): -5.0,
}


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the IHDR chunk; fails unless the file starts like a PNG."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, "not a PNG file"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def random_net(arch, n_modules, density, seed=0, dropped=0.05):
    """Masks/weights shaped (arch[l+1], arch[l]) at `density`, a random partition with some units dropped."""
    rng = np.random.default_rng(seed)
    masks = [(rng.random((arch[i + 1], arch[i])) < density).astype(np.uint8) for i in range(len(arch) - 1)]
    weights = [rng.normal(size=m.shape) for m in masks]
    partition = rng.integers(0, n_modules, sum(arch))
    partition[rng.random(sum(arch)) < dropped] = -1
    return masks, weights, partition


# ------------------------------------------------------------------------------------------ export


def test_graphml_round_trip_has_exactly_the_kept_units_and_edges(tmp_path):
    path = tmp_path / "net.graphml"
    write_graphml(ARCH, MASKS, PARTITION, path, weights=WEIGHTS)
    for g in (build_graph(ARCH, MASKS, PARTITION, weights=WEIGHTS), nx.read_graphml(path)):
        assert g.is_directed()
        assert set(g.nodes) == set(EXPECTED_NODES)
        for node, (layer, index, module) in EXPECTED_NODES.items():
            attrs = g.nodes[node]
            assert (attrs["layer"], attrs["index"], attrs["module"]) == (layer, index, module)
            assert all(isinstance(attrs[k], int) for k in ("layer", "index", "module"))
        assert set(g.edges) == set(EXPECTED_EDGES)
        for edge, weight in EXPECTED_EDGES.items():
            assert g.edges[edge]["weight"] == pytest.approx(weight)


def test_graphml_without_weights_has_no_weight_attribute(tmp_path):
    path = tmp_path / "net.graphml"
    write_graphml(ARCH, MASKS, PARTITION, path)
    g = nx.read_graphml(path)
    assert set(g.edges) == set(EXPECTED_EDGES)
    assert all("weight" not in data for _, _, data in g.edges(data=True))


def test_graphml_replaces_existing_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "net.graphml"
    path.write_text("old")
    write_graphml(ARCH, MASKS, PARTITION, path)
    assert nx.read_graphml(path).number_of_nodes() == len(EXPECTED_NODES)
    assert [p.name for p in tmp_path.iterdir()] == ["net.graphml"]


def test_kept_layer_edges_drop_edges_of_dropped_units():
    edges = kept_layer_edges(ARCH, MASKS, PARTITION, WEIGHTS)
    assert [(e.src.tolist(), e.dst.tolist()) for e in edges] == [([0, 1, 2], [0, 0, 1]), ([0, 1], [0, 1])]
    assert edges[1].weight.tolist() == [-1.0, -5.0]


@pytest.mark.parametrize(
    "masks, partition",
    [
        ([MASKS[0].T, MASKS[1]], PARTITION),  # (in, out) layout instead of torch's (out, in)
        (MASKS[:1], PARTITION),  # one mask short
        (MASKS, PARTITION[:-1]),  # partition one unit short
    ],
)
def test_inconsistent_shapes_are_rejected(masks, partition, tmp_path):
    with pytest.raises(ValueError):
        write_graphml(ARCH, masks, partition, tmp_path / "x.graphml")
    assert not any(tmp_path.iterdir())


# -------------------------------------------------------------------------------------------- draw


def test_draw_writes_png_of_sensible_size(tmp_path):
    path = tmp_path / "pics" / "net.png"  # missing folders are created
    draw_modules(ARCH, MASKS, PARTITION, path, title="hand-built net", weights=WEIGHTS)
    width, height = png_size(path)
    assert 600 <= width <= 2400 and 400 <= height <= 2400


def test_draw_paints_module_colours(tmp_path):
    """The two modules' palette colours (tab10 blue and orange) appear as solid unit markers."""
    import matplotlib.image as mpimg

    path = tmp_path / "net.png"
    draw_modules(ARCH, MASKS, PARTITION, path)
    rgb = mpimg.imread(path)[..., :3]
    for colour in ((0.122, 0.467, 0.706), (1.0, 0.498, 0.055)):
        close = np.all(np.abs(rgb - np.array(colour)) < 0.02, axis=-1)
        assert close.sum() > 50, f"module colour {colour} missing"


def test_draw_replaces_existing_file_atomically(tmp_path):
    path = tmp_path / "net.png"
    path.write_bytes(b"not a png")
    draw_modules(ARCH, MASKS, PARTITION, path)
    png_size(path)
    assert [p.name for p in tmp_path.iterdir()] == ["net.png"]


def test_failed_draw_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "net.png"
    path.write_bytes(b"old picture")

    def broken_savefig(self, *args, **kwargs):
        Path(args[0]).write_bytes(b"half a pic")
        raise OSError("disk full")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", broken_savefig)
    with pytest.raises(OutputError, match="disk full"):  # one line naming the file, not a traceback
        draw_modules(ARCH, MASKS, PARTITION, path)
    assert path.read_bytes() == b"old picture"
    assert [p.name for p in tmp_path.iterdir()] == ["net.png"]


def test_draw_rejects_labels_of_wrong_length(tmp_path):
    with pytest.raises(ValueError):
        draw_modules(ARCH, MASKS, PARTITION, tmp_path / "x.png", input_labels=["a", "b"])
    draw_modules(
        ARCH, MASKS, PARTITION, tmp_path / "y.png", input_labels=list("abcd"), output_labels=["y0", "y1"]
    )
    png_size(tmp_path / "y.png")


def test_draw_copes_with_empty_rows_and_no_edges(tmp_path):
    partition = PARTITION.copy()
    partition[4:7] = -1  # the whole hidden layer dropped: no edge survives
    draw_modules(ARCH, MASKS, partition, tmp_path / "empty_row.png")
    png_size(tmp_path / "empty_row.png")
    draw_modules(ARCH, MASKS, np.full(sum(ARCH), -1), tmp_path / "nothing.png")
    png_size(tmp_path / "nothing.png")


@pytest.mark.parametrize("arch", [[6, 24, 3], [4, 24, 24, 24, 24, 24, 4]])
def test_layout_keeps_modules_contiguous_and_io_rows_in_index_order(arch):
    masks, _, partition = random_net(arch, n_modules=4, density=0.2, seed=1, dropped=0.2)
    modules = split_partition(arch, partition)
    layout = draw_mod._layout(arch, modules, kept_layer_edges(arch, masks, partition))
    for layer, (row, order) in enumerate(zip(modules, layout.order, strict=True)):
        assert sorted(order.tolist()) == np.flatnonzero(row >= 0).tolist()
        labels = row[order]
        runs = labels[np.concatenate([[True], labels[1:] != labels[:-1]])]
        assert len(runs) == len(set(runs.tolist())), f"layer {layer}: a module is split"
        x = layout.x[layer][order]
        assert np.all(np.diff(x) > 0) and x.min() >= 0 and x.max() <= 1
        if layer in (0, len(arch) - 1):
            for m in set(labels.tolist()):
                idx = order[labels == m]
                assert np.all(np.diff(idx) > 0), "input/output units not in index order within a module"


def test_wide_network_draws_quickly(tmp_path):
    arch = [128, 256, 256, 20]
    masks, weights, partition = random_net(arch, n_modules=4, density=0.05)
    assert sum(int(m.sum()) for m in masks) > 4000
    path = tmp_path / "wide.png"
    start = time.perf_counter()
    draw_modules(arch, masks, partition, path, weights=weights)
    elapsed = time.perf_counter() - start
    width, height = png_size(path)
    assert width <= 2400 and height <= 2400
    assert elapsed < 6.0, f"drawing {arch} took {elapsed:.1f} s"
