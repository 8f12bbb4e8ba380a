"""converter.layout: PyTorch's channels-first tensors vs the artifacts' layouts."""

import numpy as np

from converter.layout import candidate_perms, channels_last, from_artifact, permute_layout, to_artifact


def test_channels_last_perms_by_rank():
    assert channels_last(4) == [0, 2, 3, 1]
    assert channels_last(5) == [0, 2, 3, 4, 1]
    assert channels_last(2) == [0, 1]


def test_candidates_follow_the_shapes():
    assert candidate_perms((1, 3, 32, 32), [1, 32, 32, 3]) == [[0, 2, 3, 1]]
    assert candidate_perms((1, 10), [1, 10]) == [[0, 1]]
    assert candidate_perms((1, 3, 3, 3), [1, 3, 3, 3]) == [[0, 1, 2, 3], [0, 2, 3, 1]]
    assert candidate_perms((1, 3, 32, 32), [None, 32, 32, 3]) == [[0, 2, 3, 1]]
    assert candidate_perms((1, 3, 32, 32), [1, 31, 32, 3]) == []


def test_round_trip_and_layout_names():
    x = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    perm = channels_last(4)
    moved = to_artifact(x, perm)
    assert moved.shape == (2, 4, 5, 3)
    assert moved[1, 2, 3, 0] == x[1, 0, 2, 3]
    np.testing.assert_array_equal(from_artifact(moved, perm), x)
    assert permute_layout("NCHW", perm) == "NHWC"
