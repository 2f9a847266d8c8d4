"""The shapes world: shapes of arrays, determinism, ground truth that matches the pixels,
classes that differ by shape only, scenes without overlap, and the shortcut marker."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

import camutils
from camutils.course import shapes as datasets
from camutils.course.shapes import (
    MARKER_COLORS, SHAPE_CLASSES, boxes_from_masks, make_scenes, make_shapes, make_shortcut,
)

LUMA = np.array([0.299, 0.587, 0.114])


@pytest.fixture(scope="module")
def shapes():
    return make_shapes(1200, seed=5)


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(300, seed=6, objects=(2, 3))


def reference_boxes(masks):
    """Tight boxes computed the slow, obvious way."""
    out = []
    for m in masks:
        ys, xs = np.nonzero(m)
        out.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] if len(xs) else [-1] * 4)
    return np.array(out)


# ---------------------------------------------------------------------------- make_shapes
def test_shapes_arrays_have_the_documented_shapes_and_types(shapes):
    n = len(shapes)
    assert n == 1200
    assert shapes.images.shape == (n, 64, 64, 3) and shapes.images.dtype == np.uint8
    assert shapes.labels.shape == (n,) and np.issubdtype(shapes.labels.dtype, np.integer)
    assert shapes.masks.shape == (n, 64, 64) and shapes.masks.dtype == bool
    assert shapes.boxes.shape == (n, 4) and np.issubdtype(shapes.boxes.dtype, np.integer)
    assert tuple(shapes.class_names) == SHAPE_CLASSES and len(set(SHAPE_CLASSES)) == 6


def test_labels_are_balanced_and_shuffled(shapes):
    counts = np.bincount(shapes.labels, minlength=len(SHAPE_CLASSES))
    assert counts.min() == counts.max() == 200
    assert len(set(shapes.labels[:12].tolist())) > 2  # not sorted by class


def test_same_seed_same_images_other_seed_other_images():
    a, b, c = make_shapes(40, seed=11), make_shapes(40, seed=11), make_shapes(40, seed=12)
    for field in ("images", "labels", "masks", "boxes"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert (a.images != c.images).mean() > 0.5


def test_boxes_are_the_tight_exclusive_boxes_of_the_masks(shapes):
    np.testing.assert_array_equal(shapes.boxes, reference_boxes(shapes.masks))


def test_every_object_is_whole_and_inside_the_image(shapes):
    m = shapes.masks
    assert m.sum(axis=(1, 2)).min() > 60
    border = m[:, 0, :].any(1) | m[:, -1, :].any(1) | m[:, :, 0].any(1) | m[:, :, -1].any(1)
    assert not border.any()
    # one connected piece per object
    assert all(ndimage.label(mask)[1] == 1 for mask in m[:100])


def test_object_stands_out_from_its_surroundings(shapes):
    """The pixels of the mask differ in brightness from a ring of background around it."""
    diffs = []
    for image, mask in zip(shapes.images[:300], shapes.masks[:300]):
        inner = ndimage.binary_erosion(mask, iterations=1)
        ring = ndimage.binary_dilation(mask, iterations=4) & ~ndimage.binary_dilation(mask, iterations=1)
        luma = image.astype(float) @ LUMA
        diffs.append(abs(luma[inner].mean() - luma[ring].mean()))
    assert np.median(diffs) > 50 and np.mean(np.array(diffs) > 25) > 0.95


def test_colour_and_size_say_nothing_about_the_class(shapes):
    """Per class, the mean object colour and the median area match those of all classes."""
    colours = np.array([im[m].mean(0) for im, m in zip(shapes.images, shapes.masks)])
    areas = shapes.masks.sum(axis=(1, 2))
    for c in range(len(SHAPE_CLASSES)):
        sel = shapes.labels == c
        assert np.abs(colours[sel].mean(0) - colours.mean(0)).max() < 20, SHAPE_CLASSES[c]
        assert abs(np.median(areas[sel]) / np.median(areas) - 1) < 0.15, SHAPE_CLASSES[c]


def test_objects_are_anywhere_not_always_central(shapes):
    cy = np.array([np.nonzero(m)[0].mean() for m in shapes.masks])
    cx = np.array([np.nonzero(m)[1].mean() for m in shapes.masks])
    assert cx.std() > 7 and cy.std() > 7
    quadrant = (cx > 32).astype(int) * 2 + (cy > 32)
    assert np.bincount(quadrant, minlength=4).min() > len(cx) / 8


def test_sizes_vary(shapes):
    areas = shapes.masks.sum(axis=(1, 2))
    assert np.percentile(areas, 90) > 1.6 * np.percentile(areas, 10)


def test_backgrounds_are_textured_and_cluttered(shapes):
    """Outside the object, images are neither flat nor the same from image to image."""
    background = [im[~ndimage.binary_dilation(m, iterations=2)] for im, m in
                  zip(shapes.images[:50], shapes.masks[:50])]
    assert min(b.std(0).mean() for b in background) > 4
    means = np.array([b.mean(0) for b in background])
    assert means.std(0).mean() > 20


def test_clutter_lies_outside_the_object_and_can_be_switched_off():
    """Without clutter the same seed gives the same objects on the same backgrounds."""
    with_clutter = make_shapes(200, seed=9)
    without = make_shapes(200, seed=9, clutter=False)
    np.testing.assert_array_equal(with_clutter.labels, without.labels)
    np.testing.assert_array_equal(with_clutter.masks, without.masks)
    changed = np.abs(with_clutter.images.astype(int) - without.images.astype(int)).max(-1) > 40
    interior = np.array([ndimage.binary_erosion(m) for m in with_clutter.masks])
    assert not (changed & interior).any()                  # clutter is drawn under the object
    per_image = changed.sum(axis=(1, 2))
    assert (per_image > 10).mean() > 0.9                   # nearly every image has some
    assert np.median(per_image) < 0.15 * 64 * 64           # and it stays thin


def test_classes_subset_and_unbalanced_draws():
    only = make_shapes(60, seed=1, classes=[0, 3])
    assert set(only.labels.tolist()) == {0, 3}
    free = make_shapes(600, seed=1, balanced=False)
    assert np.bincount(free.labels, minlength=6).std() > 0


def test_other_image_sizes_and_radii():
    data = make_shapes(20, seed=2, size=(48, 80), radius=(5, 8))
    assert data.images.shape == (20, 48, 80, 3)
    np.testing.assert_array_equal(data.boxes, reference_boxes(data.masks))


@pytest.mark.parametrize("kwargs, words", [
    ({"n": -1}, "non-negative"),
    ({"n": 2.5}, "non-negative"),
    ({"n": 3, "seed": -2}, "seed"),
    ({"n": 3, "size": (10, 64)}, "at least 24"),
    ({"n": 3, "radius": (9, 5)}, "radius"),
    ({"n": 3, "radius": (5, 40)}, "too large"),
    ({"n": 3, "classes": [7]}, "class indices"),
])
def test_bad_arguments_say_what_is_wrong(kwargs, words):
    with pytest.raises(ValueError, match=words):
        make_shapes(**kwargs)


def test_zero_images_is_an_empty_dataset():
    data = make_shapes(0)
    assert data.images.shape == (0, 64, 64, 3) and data.boxes.shape == (0, 4)


# ---------------------------------------------------------------------------- boxes
@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 12)), max_size=20))
def test_boxes_from_masks_matches_the_obvious_computation(points):
    mask = np.zeros((1, 10, 13), bool)
    for y, x in points:
        mask[0, y, x] = True
    np.testing.assert_array_equal(boxes_from_masks(mask), reference_boxes(mask))


# ---------------------------------------------------------------------------- make_scenes
def test_scenes_hold_distinct_classes_without_overlap(scenes):
    n = len(scenes)
    assert scenes.images.shape == (n, 64, 64, 3) and scenes.images.dtype == np.uint8
    assert scenes.labels.shape == (n, 3) and scenes.masks.shape == (n, 3, 64, 64)
    assert set(scenes.counts.tolist()) == {2, 3}
    for i in range(n):
        k = scenes.counts[i]
        labels = scenes.labels[i, :k]
        assert len(set(labels.tolist())) == k and labels.min() >= 0
        masks = scenes.masks[i, :k]
        assert masks.sum(axis=(1, 2)).min() > 30
        assert masks.sum(0).max() == 1  # disjoint
        # padding slots
        assert (scenes.labels[i, k:] == -1).all() and not scenes.masks[i, k:].any()
        assert (scenes.boxes[i, k:] == -1).all()


def test_scene_objects_keep_their_distance(scenes):
    gap = 3
    for i in range(60):
        k = scenes.counts[i]
        for a in range(k):
            grown = ndimage.binary_dilation(scenes.masks[i, a], iterations=gap - 1)
            others = scenes.masks[i, :k].sum(0).astype(bool) & ~scenes.masks[i, a]
            assert not (grown & others).any()


def test_scene_boxes_and_objects_accessor(scenes):
    flat_masks = scenes.masks.reshape(-1, 64, 64)
    np.testing.assert_array_equal(scenes.boxes.reshape(-1, 4), reference_boxes(flat_masks))
    objects = scenes.objects(0)
    assert len(objects) == scenes.counts[0]
    label, mask, box = objects[0]
    assert label == scenes.labels[0, 0] and mask.shape == (64, 64) and len(box) == 4


def test_scene_labels_as_multi_hot_rows_and_per_pixel_maps(scenes):
    """The ground truth of the multi-label model and the segmenter, from the objects."""
    present = scenes.multi_hot()
    assert present.shape == (len(scenes), len(SHAPE_CLASSES)) and present.dtype == np.float32
    np.testing.assert_array_equal(present.sum(1), scenes.counts)
    maps = scenes.label_maps()
    assert maps.shape == (len(scenes), 64, 64) and maps.dtype == np.uint8
    assert datasets.SEGMENT_CLASSES[datasets.BACKGROUND] == "background"
    assert datasets.SEGMENT_CLASSES[:datasets.BACKGROUND] == SHAPE_CLASSES
    for i in range(20):
        expected = np.full((64, 64), datasets.BACKGROUND)
        for label, mask, _ in scenes.objects(i):
            assert present[i, label] == 1
            expected[mask] = label
        np.testing.assert_array_equal(maps[i], expected)


def test_sizes_are_the_radius_of_the_disc_with_the_masks_area():
    data = make_shapes(300, seed=9, radius=(5, 15))
    sizes = data.sizes()
    np.testing.assert_allclose(np.pi * sizes.astype(np.float64) ** 2, data.masks.sum((1, 2)), rtol=1e-5)
    # the drawn size follows the requested one within a pixel (the mask takes the pixels the
    # anti-aliased outline covers at least half), whatever the class
    assert 5 <= sizes.min() < 6.5 and 14 < sizes.max() <= 16.5
    for c in range(len(SHAPE_CLASSES)):
        assert np.ptp(sizes[data.labels == c]) > 6


def test_scenes_are_deterministic_and_objects_can_be_fixed():
    a, b = make_scenes(10, seed=4, objects=3), make_scenes(10, seed=4, objects=3)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert (a.counts == 3).all()


def test_impossible_scenes_fail_with_advice():
    with pytest.raises(ValueError, match="fewer objects"):
        make_scenes(2, seed=0, objects=6, size=32, radius=(6, 7))
    with pytest.raises(ValueError, match="objects must be"):
        make_scenes(2, objects=7)


# ---------------------------------------------------------------------------- make_shortcut
@pytest.fixture(scope="module")
def leaky():
    return make_shortcut(600, seed=8, leak=True)


@pytest.fixture(scope="module")
def clean():
    return make_shortcut(600, seed=8, leak=False)


def test_leaking_marker_gives_the_label_away(leaky):
    assert leaky.leak is True
    np.testing.assert_array_equal(leaky.marker_labels, leaky.labels)


def test_without_leak_the_marker_is_random(clean):
    assert clean.leak is False
    agreement = (clean.marker_labels == clean.labels).mean()
    assert 0.08 < agreement < 0.3
    assert np.bincount(clean.marker_labels, minlength=6).min() > 60


@pytest.mark.parametrize("which", ["leaky", "clean"])
def test_marker_is_a_small_framed_square_in_a_corner_clear_of_the_object(which, request):
    data = request.getfixturevalue(which)
    size = 8
    assert data.marker_masks.shape == data.masks.shape and data.marker_masks.dtype == bool
    assert (data.marker_masks.sum(axis=(1, 2)) == size * size).all()
    np.testing.assert_array_equal(data.marker_boxes, reference_boxes(data.marker_masks))
    x0, y0 = data.marker_boxes[:, 0], data.marker_boxes[:, 1]
    assert set(x0.tolist()) == {0, 64 - size} and set(y0.tolist()) == {0, 64 - size}
    assert not (data.marker_masks & data.masks).any()
    # the centre shows the colour of the class it stands for
    for i in range(30):
        bx0, by0 = data.marker_boxes[i, :2]
        core = data.images[i, by0 + 1:by0 + size - 1, bx0 + 1:bx0 + size - 1].reshape(-1, 3)
        assert np.abs(core.mean(0) - MARKER_COLORS[data.marker_labels[i]]).max() < 12


def test_leak_and_no_leak_differ_only_in_the_marker_colour(leaky, clean):
    for data in (leaky, clean):
        assert np.bincount(data.labels, minlength=6).min() == 100
    np.testing.assert_array_equal(boxes_from_masks(leaky.masks), leaky.boxes)


def test_shortcut_rejects_bad_marker_sizes():
    with pytest.raises(ValueError, match="marker_size"):
        make_shortcut(2, marker_size=40)


# ---------------------------------------------------------------------------- package
def test_lazily_exported_from_camutils():
    assert camutils.make_shapes is datasets.make_shapes
    assert camutils.make_scenes is datasets.make_scenes
    assert camutils.make_shortcut is datasets.make_shortcut
