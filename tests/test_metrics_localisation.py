"""camutils.metrics.localisation against cases computed by hand."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from camutils.metrics import (
    box_iou, box_localisation, energy_pointing_game, largest_component_boxes,
    localisation_scores, mask_coverage, mask_iou, peak_locations, pointing_game,
    pointing_tolerance, threshold_regions,
)


def _map_with_peak(x, y, size=(10, 10)):
    m = np.zeros(size, np.float32)
    m[y, x] = 1.0
    return m


# --------------------------------------------------------------------------- pointing game

BOX = [2, 2, 5, 5]  # pixels x, y in 2..4 (exclusive ends)


@pytest.mark.parametrize("x, y, expected", [
    (3, 3, True), (2, 2, True), (4, 4, True),  # inside, corners included
    (5, 3, False), (3, 5, False), (1, 1, False), (9, 9, False),  # x1 / y1 are exclusive
])
def test_pointing_game_without_tolerance_is_exactly_inside_the_box(x, y, expected):
    hit = pointing_game(_map_with_peak(x, y), boxes=BOX, tolerance=0)
    assert hit.tolist() == [expected]


@pytest.mark.parametrize("x, y, distance", [
    (7, 3, 3.0),                # 3 px right of the box's last column (x = 4)
    (3, 0, 2.0),                # 2 px above its first row (y = 2)
    (7, 7, np.sqrt(3 ** 2 + 3 ** 2)),  # diagonal from the corner (4, 4)
])
def test_pointing_game_tolerance_is_the_distance_to_the_nearest_object_pixel(x, y, distance):
    m = _map_with_peak(x, y)
    assert not pointing_game(m, boxes=BOX, tolerance=0)[0]
    assert not pointing_game(m, boxes=BOX, tolerance=distance - 0.01)[0]
    assert pointing_game(m, boxes=BOX, tolerance=distance)[0]
    assert pointing_game(m, boxes=BOX, tolerance=15)[0]


def test_pointing_game_with_a_mask_follows_its_shape_not_its_box():
    ring = np.zeros((1, 9, 9), bool)
    ring[0, 1:8, 1:8] = True
    ring[0, 3:6, 3:6] = False  # a 3 x 3 hole in the middle
    centre = _map_with_peak(4, 4, (9, 9))
    # The nearest ring pixels to (4, 4) are (4, 2), (2, 4), (6, 4), (4, 6): 2 px away.
    assert not pointing_game(centre, masks=ring, tolerance=0)[0]
    assert not pointing_game(centre, masks=ring, tolerance=1.99)[0]
    assert pointing_game(centre, masks=ring, tolerance=2)[0]
    # The ring's box contains the hole.
    assert pointing_game(centre, boxes=[1, 1, 8, 8], tolerance=0)[0]


def test_pointing_game_auto_tolerance_is_15_px_scaled_from_500_px_images():
    assert pointing_tolerance((64, 64)) == pytest.approx(15 * 64 / 500)  # 1.92 px
    assert pointing_tolerance((224, 224)) == pytest.approx(6.72)
    assert pointing_tolerance((500, 375)) == pytest.approx(15.0)
    box = [30, 30, 40, 40]
    one_px = _map_with_peak(40, 35, (64, 64))   # 1 px right of the last column (x = 39)
    two_px = _map_with_peak(41, 35, (64, 64))   # 2 px: more than 1.92
    assert pointing_game(one_px, boxes=box).tolist() == [True]
    assert pointing_game(two_px, boxes=box).tolist() == [False]
    assert pointing_game(two_px, boxes=box, tolerance=15).tolist() == [True]


def test_a_map_without_a_peak_is_a_miss_even_with_a_huge_tolerance():
    maps = np.stack([np.zeros((8, 8)), np.full((8, 8), 0.3), -np.ones((8, 8))]).astype(np.float32)
    assert pointing_game(maps, boxes=[[0, 0, 8, 8]] * 3, tolerance=100).tolist() == [False] * 3
    assert peak_locations(maps).tolist() == [[-1, -1]] * 3


def test_a_plateau_peak_is_its_middle_not_its_first_pixel():
    m = np.zeros((10, 10), np.float32)
    m[2:5, 2:5] = 1.0                       # a 3 x 3 plateau, middle (3, 3)
    assert peak_locations(m).tolist() == [[3, 3]]
    # np.argmax would pick (2, 2), outside this box; the documented rule picks (3, 3), inside.
    assert pointing_game(m, boxes=[3, 3, 6, 6], tolerance=0).tolist() == [True]


def test_two_tied_peaks_resolve_to_the_first_in_row_major_order():
    m = np.zeros((8, 8), np.float32)
    m[1, 6] = m[5, 1] = 1.0     # centroid (3.5, 3): both 3.9 px away; (6, 1) comes first by rows
    assert peak_locations(m).tolist() == [[6, 1]]
    m2 = np.zeros((8, 8), np.float32)
    m2[1, 1] = m2[1, 5] = m2[1, 3] = 1.0    # centroid (3, 1) is itself a tied pixel
    assert peak_locations(m2).tolist() == [[3, 1]]


def test_pointing_game_is_batched_with_one_truth_per_map():
    maps = np.stack([_map_with_peak(3, 3), _map_with_peak(8, 8), _map_with_peak(8, 8)])
    boxes = np.array([[2, 2, 5, 5], [2, 2, 5, 5], [7, 7, 10, 10]])
    assert pointing_game(maps, boxes=boxes, tolerance=0).tolist() == [True, False, True]


# Non-square maps and boxes: x is the column, y the row. On square maps with boxes and
# points symmetric about the diagonal, swapping them changes nothing; here it does.
WIDE_BOX = [1, 4, 5, 6]  # columns x 1..4, rows y 4..5 of an 8 x 12 (H x W) map


def test_peaks_are_x_y_on_a_non_square_map():
    assert peak_locations(_map_with_peak(10, 1, size=(6, 12))).tolist() == [[10, 1]]
    assert peak_locations(_map_with_peak(1, 10, size=(12, 6))).tolist() == [[1, 10]]


def test_pointing_game_on_a_non_square_map_and_box_reads_x_as_the_column():
    # (2, 5) is inside; (5, 2), its mirror across the diagonal, is not (and (2, 5) read as
    # row 2, column 5 would be outside, (5, 2) read so would be inside).
    maps = np.stack([_map_with_peak(2, 5, size=(8, 12)), _map_with_peak(5, 2, size=(8, 12))])
    boxes = np.array([WIDE_BOX, WIDE_BOX])
    assert pointing_game(maps, boxes=boxes, tolerance=0).tolist() == [True, False]
    masks = np.zeros((2, 8, 12), bool)
    masks[:, 4:6, 1:5] = True
    assert pointing_game(maps, masks=masks, tolerance=0).tolist() == [True, False]
    # the transposed problem (12 x 8 maps, a tall box) gives the same answers
    tall = np.stack([_map_with_peak(5, 2, size=(12, 8)), _map_with_peak(2, 5, size=(12, 8))])
    assert pointing_game(tall, boxes=[[4, 1, 6, 5]] * 2, tolerance=0).tolist() == [True, False]


def test_pointing_game_tolerance_on_a_non_square_map_and_box():
    # nearest box pixels: (4, 5) for (10, 5), 6 px away; (2, 4) for (2, 0), 4 px away
    maps = np.stack([_map_with_peak(10, 5, size=(8, 12)), _map_with_peak(2, 0, size=(8, 12))])
    boxes = np.array([WIDE_BOX, WIDE_BOX])
    assert pointing_game(maps, boxes=boxes, tolerance=3.99).tolist() == [False, False]
    assert pointing_game(maps, boxes=boxes, tolerance=4).tolist() == [False, True]
    assert pointing_game(maps, boxes=boxes, tolerance=5.99).tolist() == [False, True]
    assert pointing_game(maps, boxes=boxes, tolerance=6).tolist() == [True, True]
    # energy: a map whose mass is 3 parts in the box's rows and columns, 1 part in their mirror
    m = np.zeros((8, 12), np.float32)
    m[4, 1], m[1, 4] = 3.0, 1.0
    assert energy_pointing_game(m, boxes=WIDE_BOX).tolist() == pytest.approx([0.75])


def test_several_boxes_per_image_with_padding_count_any_of_them():
    maps = np.stack([_map_with_peak(8, 8), _map_with_peak(0, 9)])
    boxes = np.array([[[0, 0, 2, 2], [7, 7, 10, 10]],
                      [[0, 0, 2, 2], [-1, -1, -1, -1]]])
    assert pointing_game(maps, boxes=boxes, tolerance=0).tolist() == [True, False]


def test_ground_truth_errors_say_what_is_wrong():
    m = _map_with_peak(3, 3)
    with pytest.raises(ValueError, match="exactly one of masks"):
        pointing_game(m)
    with pytest.raises(ValueError, match="exactly one of masks"):
        pointing_game(m, masks=np.ones((1, 10, 10), bool), boxes=BOX)
    with pytest.raises(ValueError, match="empty"):
        pointing_game(m, boxes=[5, 5, 5, 9])
    with pytest.raises(ValueError, match="shape"):
        pointing_game(m, masks=np.ones((1, 9, 10), bool))
    with pytest.raises(ValueError, match="is empty"):
        pointing_game(m, masks=np.zeros((1, 10, 10), bool))
    with pytest.raises(ValueError, match="NaN"):
        pointing_game(np.full((10, 10), np.nan), boxes=BOX)
    with pytest.raises(ValueError, match="tolerance"):
        pointing_game(m, boxes=BOX, tolerance=-1)
    with pytest.raises(ValueError, match="outside"):
        pointing_game(m, boxes=[20, 20, 30, 30])


# --------------------------------------------------------------------------- energy


def test_energy_pointing_game_by_hand():
    m = np.array([[1, 2, 0],
                  [3, -1, 4]], np.float32)
    # box x in 0..1, y in 0..1: positive energy inside 1 + 2 + 3 = 6 of 1 + 2 + 3 + 4 = 10
    assert energy_pointing_game(m, boxes=[0, 0, 2, 2]).tolist() == pytest.approx([0.6])
    mask = np.array([[False, False, True], [False, True, True]])
    # mask holds 0, -1 and 4: 4 of 10
    assert energy_pointing_game(m, masks=mask).tolist() == pytest.approx([0.4])


def test_energy_of_a_map_with_no_positive_value_is_zero_not_nan():
    maps = np.stack([np.zeros((4, 4)), -np.ones((4, 4))]).astype(np.float32)
    share = energy_pointing_game(maps, boxes=[[0, 0, 2, 2]] * 2)
    assert share.tolist() == [0.0, 0.0]
    assert share.dtype == np.float32


@settings(max_examples=30, deadline=None)
@given(arrays(np.float32, (3, 6, 7), elements=st.floats(-1, 1, width=32)),
       arrays(bool, (3, 6, 7)))
def test_energy_inside_and_outside_add_up_to_one(maps, masks):
    masks[:, 0, 0] = True          # neither the mask ...
    masks[:, -1, -1] = False       # ... nor its complement is empty
    inside = energy_pointing_game(maps, masks=masks)
    outside = energy_pointing_game(maps, masks=~masks)
    assert np.all((inside >= 0) & (inside <= 1))
    has_energy = (maps > 0).any(axis=(1, 2))
    np.testing.assert_allclose((inside + outside)[has_energy], 1.0, atol=1e-5)
    assert np.all((inside + outside)[~has_energy] == 0)


@settings(max_examples=30, deadline=None)
@given(arrays(np.float32, (2, 8, 8), elements=st.floats(0, 1, width=32)),
       st.floats(0, 5), st.floats(0, 5))
def test_a_larger_tolerance_never_loses_a_hit(maps, t1, t2):
    small, large = sorted((t1, t2))
    boxes = [[2, 3, 5, 6], [0, 0, 1, 8]]
    hits_small = pointing_game(maps, boxes=boxes, tolerance=small)
    hits_large = pointing_game(maps, boxes=boxes, tolerance=large)
    assert np.all(hits_large | ~hits_small)


# --------------------------------------------------------------------------- boxes


def test_box_iou_of_known_boxes():
    pred = np.array([[0, 0, 4, 4], [0, 0, 4, 4], [0, 0, 4, 4], [-1, -1, -1, -1], [1, 1, 3, 4]])
    truth = np.array([[0, 0, 4, 4], [2, 2, 6, 6], [4, 0, 8, 4], [0, 0, 4, 4], [0, 0, 4, 4]])
    # identical: 1; overlap 2 x 2 = 4 of 16 + 16 - 4 = 28; touching edges: 0 (exclusive ends);
    # an empty predicted box: 0; a 2 x 3 box inside the 4 x 4 one: 6 / 16
    expected = [1.0, 4 / 28, 0.0, 0.0, 6 / 16]
    assert box_iou(pred, truth).tolist() == pytest.approx(expected)


def test_box_iou_takes_the_best_of_several_true_boxes():
    pred = np.array([[0, 0, 4, 4]])
    truth = np.array([[[10, 10, 12, 12], [2, 2, 6, 6], [-1, -1, -1, -1]]])
    assert box_iou(pred, truth).tolist() == pytest.approx([4 / 28])


def _two_blobs():
    m = np.zeros((12, 12), np.float32)
    m[1:4, 1:5] = 0.5    # blob A: 3 x 4 = 12 px, below the maximum but the largest
    m[8:10, 8:10] = 1.0  # blob B: 2 x 2 = 4 px, holds the maximum
    m[6, 0:6] = 0.15     # a faint streak under 20% of the maximum: not part of any region
    return m


def test_threshold_is_twenty_percent_of_each_maps_maximum():
    m = _two_blobs()
    region = threshold_regions(np.stack([m, m * 10]))
    assert region[0].sum() == 12 + 4
    np.testing.assert_array_equal(region[0], region[1])  # relative to each map's maximum
    assert threshold_regions(m, 0.6)[0].sum() == 4
    assert not threshold_regions(np.zeros((3, 3))).any()


def test_the_largest_component_box_is_blob_a_not_the_peak():
    boxes = largest_component_boxes(_two_blobs())
    assert boxes.tolist() == [[1, 1, 5, 4]]  # x 1..4, y 1..3, exclusive ends
    # Above 60% only blob B is left.
    assert largest_component_boxes(_two_blobs(), threshold=0.6).tolist() == [[8, 8, 10, 10]]


def test_components_follow_the_connectivity_and_never_cross_images():
    m = np.zeros((6, 6), np.float32)
    m[0:2, 0:2] = 1.0
    m[2:4, 2:4] = 1.0    # touches the first square at a corner only
    m[5, 5] = 1.0
    assert largest_component_boxes(m, connectivity=8).tolist() == [[0, 0, 4, 4]]
    # With 4-connectivity the two squares are separate and equal: the first in row-major order.
    assert largest_component_boxes(m, connectivity=4).tolist() == [[0, 0, 2, 2]]
    # Stacked images: a blob on the last row of image 0 and the first row of image 1.
    a = np.zeros((4, 4), np.float32)
    a[3, :] = 1
    b = np.zeros((4, 4), np.float32)
    b[0, :2] = 1
    c = np.zeros((4, 4), np.float32)  # nothing above threshold
    boxes = largest_component_boxes(np.stack([a, b, c]))
    assert boxes.tolist() == [[0, 3, 4, 4], [0, 0, 2, 1], [-1, -1, -1, -1]]


def test_box_localisation_is_the_cam_papers_protocol():
    maps = np.stack([_two_blobs(), _two_blobs(), np.zeros((12, 12), np.float32)])
    truth = np.array([[1, 1, 5, 4], [8, 8, 10, 10], [1, 1, 5, 4]])
    result = box_localisation(maps, boxes=truth)
    assert result["boxes"].tolist() == [[1, 1, 5, 4]] * 2 + [[-1, -1, -1, -1]]
    # image 1: predicted A (12 px) vs true B (4 px): disjoint
    assert result["iou"].tolist() == pytest.approx([1.0, 0.0, 0.0])
    assert result["correct"].tolist() == [True, False, False]
    assert result["accuracy"] == pytest.approx(1 / 3)
    with_class = box_localisation(maps, boxes=truth, predicted=[2, 0, 0], labels=[1, 0, 0])
    assert with_class["correct"].tolist() == [False, False, False]
    with pytest.raises(ValueError, match="both predicted= and labels="):
        box_localisation(maps, boxes=truth, predicted=[1, 0, 0])


def test_box_localisation_iou_threshold_and_masks():
    m = np.zeros((10, 10), np.float32)
    m[0:4, 0:4] = 1.0
    mask = np.zeros((10, 10), bool)
    mask[0:4, 0:6] = True   # tight box (0, 0, 6, 4): IoU 16 / 24 = 0.667
    assert box_localisation(m, masks=mask)["iou"].tolist() == pytest.approx([16 / 24])
    assert box_localisation(m, masks=mask)["correct"].tolist() == [True]
    assert box_localisation(m, masks=mask, iou_threshold=0.7)["correct"].tolist() == [False]


# --------------------------------------------------------------------------- masks


def test_mask_iou_and_coverage_by_hand():
    mask = np.zeros((6, 6), bool)
    mask[1:3, 1:5] = True            # 8 px
    inside = np.zeros((6, 6), np.float32)
    inside[1:3, 1:3] = 1.0           # 4 px, all on the object
    spread = np.zeros((6, 6), np.float32)
    spread[0:4, 1:5] = 1.0           # 16 px covering the whole object
    maps = np.stack([inside, spread])
    masks = np.stack([mask, mask])
    assert mask_iou(maps, masks).tolist() == pytest.approx([4 / 8, 8 / 16])
    assert mask_coverage(maps, masks).tolist() == pytest.approx([4 / 8, 1.0])
    empty = np.zeros((1, 6, 6), np.float32)
    assert mask_iou(empty, mask[None]).tolist() == [0.0]
    assert mask_coverage(empty, mask[None]).tolist() == [0.0]


def test_localisation_scores_is_one_row_of_means():
    maps = np.stack([_two_blobs(), _map_with_peak(0, 11, (12, 12))])
    masks = np.zeros((2, 12, 12), bool)
    masks[:, 1:4, 1:5] = True
    scores = localisation_scores(maps, masks=masks)
    assert set(scores) == {"pointing_game", "energy_pointing_game", "box_iou",
                           "localisation_accuracy", "mask_iou", "mask_coverage"}
    assert all(isinstance(v, float) for v in scores.values())
    # image 0: the peak is blob B, off the mask; image 1: a single pixel far away
    assert scores["pointing_game"] == 0.0
    assert scores["energy_pointing_game"] == pytest.approx((12 * 0.5 / (6 + 4 + 0.9)) / 2)
    assert scores["box_iou"] == pytest.approx(0.5)
    assert scores["localisation_accuracy"] == pytest.approx(0.5)
    boxes_only = localisation_scores(maps, boxes=[[1, 1, 5, 4]] * 2)
    assert "mask_iou" not in boxes_only
    assert boxes_only["energy_pointing_game"] == pytest.approx(scores["energy_pointing_game"])


def test_an_explanation_is_accepted_as_maps():
    class Explained:
        maps = _map_with_peak(3, 3)[None]

    assert pointing_game(Explained(), boxes=BOX, tolerance=0).tolist() == [True]
