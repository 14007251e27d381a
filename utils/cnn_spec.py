"""CNN layer lists: parse "conv:16:3 pool:2 conv:32:3 pool:2 fc:64" and follow the shapes through it.

`conv:C:K` = C channels, K×K kernel, same padding (`conv:C:K:P` gives padding P instead); `pool:P` = P×P max
pool (stride P) after the conv layer before it; `fc:N` = N units. The list names hidden layers only; the
output layer follows from the task. Plain Python (no torch) so config checks and graph readers can use it.
"""

from __future__ import annotations

from dataclasses import dataclass

from utils.errors import InputError

LAYER_KINDS = ("conv", "pool", "fc")


@dataclass(frozen=True)
class LayerSpec:
    """One weight layer of a CNN: kind "conv" (size = channels, kernel, padding, pool after it or 1) or
    "fc" (size = units)."""

    kind: str
    size: int
    kernel: int = 0
    padding: int = 0
    pool: int = 1

    def text(self) -> str:
        if self.kind == "fc":
            return f"fc:{self.size}"
        pad = "" if self.padding == self.kernel // 2 else f":{self.padding}"
        pool = f" pool:{self.pool}" if self.pool > 1 else ""
        return f"conv:{self.size}:{self.kernel}{pad}{pool}"


def _positive(token: str, part: str, what: str) -> int:
    try:
        value = int(part)
    except ValueError:
        raise InputError(f"--cnn layer {token!r}: {what} must be an integer, got {part!r}") from None
    if value <= 0:
        raise InputError(f"--cnn layer {token!r}: {what} must be positive, got {value}")
    return value


def parse_cnn(spec: str) -> list[LayerSpec]:
    """Parse a layer list ("conv:16:3 pool:2 fc:64") into hidden LayerSpecs; pools attach to the conv
    before them. Raises InputError naming the token that is wrong."""
    tokens = str(spec).replace(",", " ").split()
    if not tokens:
        raise InputError('--cnn needs at least one layer, e.g. --cnn "conv:16:3 pool:2 fc:64"')
    layers: list[LayerSpec] = []
    for token in tokens:
        parts = token.split(":")
        kind = parts[0].lower()
        if kind not in LAYER_KINDS:
            raise InputError(
                f"--cnn layer {token!r}: unknown layer kind {parts[0]!r} (choose conv:C:K, pool:P, fc:N)"
            )
        if kind == "conv":
            if len(parts) not in (3, 4):
                raise InputError(f"--cnn layer {token!r}: write conv:CHANNELS:KERNEL (or conv:C:K:PADDING)")
            channels = _positive(token, parts[1], "channels")
            kernel = _positive(token, parts[2], "kernel size")
            padding = kernel // 2
            if len(parts) == 4:
                try:
                    padding = int(parts[3])
                except ValueError:
                    raise InputError(f"--cnn layer {token!r}: padding must be an integer") from None
                if padding < 0:
                    raise InputError(f"--cnn layer {token!r}: padding must be zero or positive")
            layers.append(LayerSpec("conv", channels, kernel, padding))
        elif kind == "pool":
            if len(parts) != 2:
                raise InputError(f"--cnn layer {token!r}: write pool:SIZE")
            size = _positive(token, parts[1], "pool size")
            if not layers or layers[-1].kind != "conv":
                raise InputError(f"--cnn layer {token!r}: a pool must follow a conv layer")
            if layers[-1].pool > 1:
                raise InputError(f"--cnn layer {token!r}: one pool per conv layer")
            last = layers[-1]
            layers[-1] = LayerSpec("conv", last.size, last.kernel, last.padding, size)
        else:
            if len(parts) != 2:
                raise InputError(f"--cnn layer {token!r}: write fc:UNITS")
            layers.append(LayerSpec("fc", _positive(token, parts[1], "units")))
    kinds = [layer.kind for layer in layers]
    if "fc" in kinds and "conv" in kinds[kinds.index("fc") :]:
        raise InputError(f"--cnn {spec!r}: conv layers must come before fc layers")
    return layers


def spec_text(layers: list[LayerSpec]) -> str:
    """The canonical layer list string (parse_cnn(spec_text(l)) == l)."""
    return " ".join(layer.text() for layer in layers)


def layer_shapes(layers: list[LayerSpec], input_shape) -> list[tuple[int, ...]]:
    """Output shape of every hidden layer for one input of `input_shape` (C, H, W): (C', H', W') for conv
    layers (after their pool), (N,) for fc. Raises InputError naming the layer where the shape breaks."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or any(s <= 0 for s in shape):
        raise InputError(f"--input_shape needs three positive numbers C H W, got {' '.join(map(str, shape))}")
    shapes = []
    for i, layer in enumerate(layers):
        if layer.kind == "conv":
            _, h, w = shape
            h2 = h + 2 * layer.padding - layer.kernel + 1
            w2 = w + 2 * layer.padding - layer.kernel + 1
            if h2 <= 0 or w2 <= 0:
                raise InputError(
                    f"--cnn layer {i + 1} ({layer.text()}) does not fit its input of shape "
                    f"{_shape_text(shape)}: a {layer.kernel}x{layer.kernel} kernel with padding "
                    f"{layer.padding} needs at least {layer.kernel - 2 * layer.padding} pixels per side"
                )
            if layer.pool > 1 and (h2 < layer.pool or w2 < layer.pool):
                raise InputError(
                    f"--cnn layer {i + 1} ({layer.text()}) does not fit: pool:{layer.pool} needs at least "
                    f"{layer.pool}x{layer.pool} pixels but the conv output is "
                    f"{_shape_text((layer.size, h2, w2))}"
                )
            shape = (layer.size, h2 // layer.pool, w2 // layer.pool)
        else:
            shape = (layer.size,)
        shapes.append(shape)
    return shapes


def _shape_text(shape) -> str:
    return "x".join(str(s) for s in shape)
