"""Notebook 07: exercises on the explorer (which layer is finest; what must be recomputed)."""

from __future__ import annotations

from . import Wrong, exercise

#: The explorer's controls, as the exercise names them.
CONTROLS = ("image", "model", "method", "class", "layer", "opacity", "colour map")
_RECOMPUTE = {"image", "model", "method", "class", "layer"}
_ALIASES = {"color map": "colour map", "colormap": "colour map", "colourmap": "colour map",
            "cmap": "colour map", "alpha": "opacity", "target": "class", "photo": "image"}


def _finest_demo():
    resolutions = {"head_relu6": (7, 7), "block5c_add": (14, 14), "block3b_add": (28, 28)}
    return "block3b_add", "head_relu6", {"resolutions": resolutions}


@exercise(
    "07.finest_layer",
    "Which layer gives the finest map?",
    """
    A map is as fine as the layer it comes from: a 7 x 7 map has 49 cells to spread over the
    photo, a 28 x 28 map has 784. With the explorer (or `lite0.explain(..., layer=...)`),
    explain the same photo at each layer in `candidates`, and collect each map's raw size in
    a dict `resolutions = {layer: explanation.raw.shape[-2:]}`.
    Answer with the name of the layer that gives the finest map:
    `ex.check(answer, resolutions=resolutions)`.
    """,
    hints=[
        "`explanation.raw` is the map at the layer's own resolution, before upsampling; its "
        "last two dimensions are (height, width).",
        "The finest map has the most cells: compare height * width. Earlier layers are finer.",
    ],
    solution="""
    resolutions = {}
    for layer in candidates:
        explorer.layer_select.value = layer
        resolutions[layer] = explorer.explanation.raw.shape[-2:]
    answer = max(resolutions, key=lambda name: resolutions[name][0] * resolutions[name][1])
    """,
    demo=_finest_demo,
    minutes=5,
)
def check_finest_layer(answer, resolutions=None):
    if not resolutions:
        raise Wrong("Pass the sizes you measured: ex.check(answer, resolutions=resolutions).")
    sizes = {str(name): tuple(int(s) for s in shape[-2:]) for name, shape in resolutions.items()}
    if not isinstance(answer, str):
        raise Wrong(f"Answer with a layer name (a str), not a {type(answer).__name__}.")
    if answer not in sizes:
        raise Wrong(f"{answer!r} is not among the layers you measured: {', '.join(sizes)}.")
    area = {name: h * w for name, (h, w) in sizes.items()}
    best = max(area.values())
    if area[answer] < best:
        finest = [name for name, a in area.items() if a == best]
        h, w = sizes[answer]
        fh, fw = sizes[finest[0]]
        raise Wrong(f"{answer!r} gives a {h} x {w} map, but {finest[0]!r} gives a finer "
                    f"{fh} x {fw} one.")
    h, w = sizes[answer]
    return (f"{answer!r} gives {h} x {w} cells. Finer maps come from earlier layers, whose "
            "channels are less class-specific: the map gains detail and loses focus.")


def _recompute_demo():
    return (["image", "model", "method", "class", "layer"],
            ["image", "method", "opacity"], {})


@exercise(
    "07.what_needs_recomputing",
    "Which controls need a new explanation?",
    f"""
    The explorer keeps its last maps. Some controls change the map itself, and the explainer
    must run again; others only change how the same map is drawn over the image.
    From the controls {', '.join(repr(c) for c in CONTROLS)}, answer with the list of
    those that need a new explanation (the others only re-blend the cached map).
    Check what you think with the explorer's `explain_count`, which counts explanations
    actually computed.
    """,
    hints=[
        "Ask of each control: does it change the numbers in the map, or only their colours?",
        "The map is a function of the pixels, the network, the rule that weighs the channels, "
        "the class whose score is explained, and the layer. Opacity and colours are drawing.",
    ],
    solution="""
    answer = ["image", "model", "method", "class", "layer"]
    """,
    demo=_recompute_demo,
    minutes=3,
    giveaways=[
        r"(opacity|colou?r ?map)[^.\n]{0,80}(only re-?blend|only redraw|re-?blends? the cached|"
        r"only how the map is drawn|respond at once)",
        r"image, model, method, class,? and layer[^.\n]{0,60}(new explanation|recomput|explain)",
        r"redrawn, not recomputed",
    ],
)
def check_what_needs_recomputing(answer):
    if isinstance(answer, str):
        answer = [answer]
    names = set()
    for item in answer:
        key = " ".join(str(item).lower().replace("_", " ").split())
        key = _ALIASES.get(key, key)
        if key not in CONTROLS:
            raise Wrong(f"{item!r} is not one of the controls: {', '.join(CONTROLS)}.")
        names.add(key)
    drawn = sorted(names - _RECOMPUTE, key=CONTROLS.index)
    if drawn:
        raise Wrong(f"Changing the {' or the '.join(drawn)} only redraws the cached map: the "
                    "numbers in it stay the same, so nothing needs recomputing.")
    missing = sorted(_RECOMPUTE - names, key=CONTROLS.index)
    if missing:
        raise Wrong(f"Changing the {' or the '.join(missing)} changes the map itself: what "
                    "would the explorer show if it kept the old one?")
    return ("Five controls change the map; opacity and colour map only redraw it, which is "
            "why sliding them is instant.")
