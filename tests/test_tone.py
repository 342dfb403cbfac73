"""The tone measures and the tone guard (``mefgan_tf.tone``): a fusion keeps its tone unless it is
visibly worse than the classical fusion's (lifted blacks, paler colours, darker with no more contrast),
and then one global curve brings it back within the margins."""
import cv2
import numpy as np
import pytest

from mefgan_tf.baselines import mertens
from mefgan_tf.fusion import FusionOptions, fuse_images
from mefgan_tf.fusion.steps import ToneGuard
from mefgan_tf.samples import sample_pair, sample_photo
from mefgan_tf.tone import (
    LIMITS,
    MARGINS,
    MAX_LIFT,
    PREVIEW_SIZE,
    REFERENCE_SIZE,
    ToneCurve,
    _with,
    guard_curve,
    preview,
    tone_columns,
    tone_guard,
    tone_problems,
    tone_reference,
    tone_stats,
)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return sample_photo("coffee", 256).astype(np.float32) / 255.0


def luma(image: np.ndarray) -> np.ndarray:
    return image @ np.float32([0.299, 0.587, 0.114])


def veiled(image: np.ndarray, veil: float = 0.3) -> np.ndarray:
    return (image * (1 - veil) + veil).astype(np.float32)


def paler(image: np.ndarray, keep: float = 0.5) -> np.ndarray:
    grey = luma(image)[..., None]
    return (grey + keep * (image - grey)).astype(np.float32)


def test_tone_stats_are_8_bit_black_level_saturation_mean_and_tonal_range_of_luma():
    grey = np.full((10, 10, 3), 0.5, np.float32)
    grey[0, 0] = 0.0
    stats = tone_stats(grey)
    assert stats.black == pytest.approx(0.0 + 0.99 * 128, abs=0.5)  # 1st percentile of 100 pixels, one black
    assert stats.saturation == 0.0
    assert stats.mean == pytest.approx(128 * 99 / 100, abs=0.01)
    red = np.zeros((4, 4, 3), np.float32)
    red[..., 0] = 1.0
    assert tone_stats(red).saturation == 255.0
    assert set(tone_columns(red)) == {"BLACK", "SATURATION", "LEVEL", "CONTRAST"}
    ramp = np.repeat(np.linspace(0, 1, 256, dtype=np.float32)[None, :, None], 3, axis=2)
    assert tone_stats(ramp).contrast == pytest.approx(0.98 * 255, abs=0.5)  # the 99th minus the 1st percentile


def test_the_curve_moves_the_black_point_and_keeps_white_white():
    curve = ToneCurve(black=0.3, black_to=0.05)
    out = curve(np.float32([[[0.3, 0.3, 0.3], [1.0, 1.0, 1.0], [0.65, 0.65, 0.65]]]))
    np.testing.assert_allclose(out[0, :, 0], [0.05, 1.0, 0.525], atol=1e-6)
    assert ToneCurve().identity and not curve.identity


def test_the_curve_moves_the_white_point_with_the_black_point_on_one_straight_line():
    curve = ToneCurve(black=0.2, black_to=0.1, white=0.7, white_to=0.95)
    out = curve(np.float32([[[0.2, 0.2, 0.2], [0.7, 0.7, 0.7], [0.45, 0.45, 0.45], [0.9, 0.9, 0.9]]]))
    np.testing.assert_allclose(out[0, :, 0], [0.1, 0.95, 0.525, 1.0], atol=1e-6)  # past the white point: clipped


def test_the_reference_is_mertens_at_the_photos_own_size_up_to_the_reference_size_then_of_previews():
    under, over = (x.astype(np.float32) / 255.0 for x in sample_pair("coffee", 2.0, max_side=300))
    np.testing.assert_array_equal(tone_reference([under, over]), mertens([under, over]))
    large = [cv2.resize(x, None, fx=5, fy=5, interpolation=cv2.INTER_LINEAR) for x in (under, over)]
    assert max(large[0].shape[:2]) > REFERENCE_SIZE
    np.testing.assert_array_equal(tone_reference(large), mertens([preview(x) for x in large]))
    assert max(tone_reference(large).shape[:2]) == PREVIEW_SIZE


def test_a_fusion_as_good_as_the_reference_is_left_unchanged(photo):
    assert guard_curve(photo, photo).identity
    darker_but_more_contrast = np.clip((photo - 0.5) * 1.6 + 0.35, 0, 1).astype(np.float32)
    assert guard_curve(darker_but_more_contrast, photo).chroma == 1.0
    assert guard_curve(darker_but_more_contrast, photo).gamma == 1.0


def test_lifted_blacks_come_down_to_the_reference_plus_the_margin(photo):
    fusion = veiled(photo)
    assert "veil" in tone_problems(tone_columns(fusion), tone_columns(photo))  # and paler: a veil fades colours
    fixed = guard_curve(fusion, photo)(fusion)
    assert tone_stats(fixed).black == pytest.approx(tone_stats(photo).black + MARGINS.black, abs=1.0)
    assert tone_problems(tone_columns(fixed), tone_columns(photo)) == []


def test_paler_colours_get_their_saturation_back_to_the_margin(photo):
    fusion = paler(photo)
    assert "paler" in tone_problems(tone_columns(fusion), tone_columns(photo))
    curve = guard_curve(fusion, photo)
    assert curve.chroma > 1.5
    assert tone_stats(curve(fusion)).saturation == pytest.approx(tone_stats(photo).saturation - MARGINS.saturation, abs=0.5)


def test_a_darker_fusion_with_dull_highlights_gets_its_white_point_up_until_its_range_is_wider(photo):
    reference = (photo * 0.85).astype(np.float32)
    fusion = (photo * 0.6).astype(np.float32)  # darker, and its whites grey: a narrower range
    assert "darker" in tone_problems(tone_columns(fusion), tone_columns(reference))
    curve = guard_curve(fusion, reference)
    assert curve.white_to > curve.white and curve.black == curve.black_to and curve.gamma == 1.0  # no gamma needed
    fixed = tone_stats(curve(fusion))
    assert fixed.contrast == pytest.approx(tone_stats(reference).contrast + MARGINS.contrast + 1, abs=1.0)
    assert tone_problems(tone_columns(curve(fusion)), tone_columns(reference)) == []


def midtones_darker(image: np.ndarray, power: float) -> np.ndarray:
    """``image`` with its mid-tones darkened by ``power`` and its black level (1st percentile) and white kept."""
    black = np.percentile(luma(image), 1.0)
    return (black + (1 - black) * np.power(np.clip((image - black) / (1 - black), 0, 1), power)).astype(np.float32)


def test_a_darker_fusion_whose_whites_are_already_white_is_lifted_to_the_margin_by_a_gentle_gamma(photo):
    reference = np.clip(photo * 1.3, 0, 1)  # its 99th percentile at 255: the white point cannot go higher
    fusion = midtones_darker(reference, 2.0)
    assert "darker" in tone_problems(tone_columns(fusion), tone_columns(reference))
    curve = guard_curve(fusion, reference)
    assert 1.0 - MAX_LIFT < curve.gamma < 1.0 and curve.white_to == curve.white
    lifted, wanted = tone_stats(curve(fusion)).mean, tone_stats(reference).mean
    assert wanted - LIMITS.darker < lifted <= wanted - MARGINS.darker + 0.5  # the chroma's black fix takes a little back
    assert tone_problems(tone_columns(curve(fusion)), tone_columns(reference)) == []
    much_darker = midtones_darker(reference, 4.0)  # comes only part of the way: a gamma under 0.8 flattens
    assert guard_curve(much_darker, reference).gamma == pytest.approx(1.0 - MAX_LIFT, abs=1e-3)


def dark_colours(image: np.ndarray, keep: float) -> np.ndarray:
    """``image`` paler (``keep``) but for its darkest tenth, a dark saturated blue: a chroma gain that
    brings the rest back pushes the blue's red and green below zero."""
    dark = (luma(image) < np.percentile(luma(image), 10))[..., None]
    return np.where(dark, np.float32([0.02, 0.02, 0.3]), paler(image, keep)).astype(np.float32)


def test_colours_made_richer_keep_the_black_level_their_clipping_would_lift(photo):
    fusion, reference = dark_colours(photo, 0.3), dark_colours(photo, 1.0)
    curve = guard_curve(fusion, reference)
    assert curve.chroma > 2.5
    assert tone_stats(_with(curve, black_to=curve.black)(fusion)).black > tone_stats(reference).black + 2 * MARGINS.black
    assert curve.black_to < curve.black  # the black point came down to make up for it
    fixed, wanted = tone_stats(curve(fusion)), tone_stats(reference)
    assert fixed.black <= wanted.black + MARGINS.black
    assert fixed.saturation >= wanted.saturation - MARGINS.saturation - 0.5


def test_grey_stays_grey_and_the_same_photo_twice_comes_back_unchanged(photo):
    grey = np.repeat(luma(photo)[..., None], 3, axis=2)
    curve = guard_curve(veiled(grey), grey)
    assert not curve.identity
    out = curve(veiled(grey))
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    assert tone_guard(photo, [photo, photo]).identity


def test_the_limits_are_wider_than_the_margins_the_guard_keeps():
    assert LIMITS.black > MARGINS.black and LIMITS.saturation > MARGINS.saturation and LIMITS.darker > MARGINS.darker


def veiling_pair(over: np.ndarray, under: np.ndarray, shape=None) -> np.ndarray:
    """A pair 'model' with a veil: the mean of the pair, lifted."""
    return veiled((over + under) / 2, 0.35)


def test_the_fusion_runs_the_guard_before_the_detail_and_only_with_the_detail():
    under, over = (x.astype(np.float32) / 255.0 for x in sample_pair("astronaut", max_side=192))
    reference = tone_stats(mertens([under, over]))
    guarded = fuse_images(veiling_pair, [under, over], FusionOptions.resolve(tile=None))
    unguarded = fuse_images(veiling_pair, [under, over], FusionOptions.resolve(tile=None, tone_guard=False))
    assert tone_stats(unguarded).black > reference.black + LIMITS.black
    assert tone_stats(guarded).black <= reference.black + LIMITS.black
    assert any(isinstance(step, ToneGuard) for step in FusionOptions().steps())
    assert not any(isinstance(step, ToneGuard) for step in FusionOptions.resolve(detail=0).steps())
    assert not any(isinstance(step, ToneGuard) for step in FusionOptions.resolve(tone_guard=False).steps())


# ------------------------------------------------------------------------- the SavedModel's tone guard
@pytest.fixture(scope="module")
def traced_guard():
    """``graph_tone_guard`` of a pair traced once for any size, as the SavedModel runs it."""
    import tensorflow as tf

    from mefgan_tf.tone import graph_tone_guard

    image = tf.TensorSpec([None, None, 3], tf.float32)
    return tf.function(lambda fusion, first, second: graph_tone_guard(fusion, [first, second]),
                       input_signature=[image] * 3)


@pytest.mark.parametrize("shape", [(300, 400), (37, 53), (3, 5)])
def test_the_graph_measures_are_opencvs_8_bit_ones_and_its_mertens_is_opencvs_down_to_one_pixel(shape):
    import tensorflow as tf

    from mefgan_tf.tone import graph_mertens, graph_tone_stats

    image = np.random.default_rng(shape[0]).random((*shape, 3), dtype=np.float32)
    stats = tone_stats(image)
    black, saturation, mean, contrast = (float(value) for value in graph_tone_stats(tf.constant(image)))
    assert (black, saturation, contrast) == (stats.black, stats.saturation, stats.contrast)
    assert mean == pytest.approx(stats.mean, abs=1e-4)
    exposures = [np.clip(image * 0.4, 0, 1), np.clip(image * 1.8, 0, 1)]
    np.testing.assert_allclose(graph_mertens([tf.constant(e) for e in exposures]).numpy(), mertens(exposures), atol=1e-4)


@pytest.mark.parametrize(("flaw", "scale"), [(flaw, 1) for flaw in ("veil", "darker", "dull", "paler", "faded", "dark colours", "none")]
                         + [("veil", 2.5)])  # 600 px: the reference at that size; 1500 px: of 512-px previews
def test_the_graph_tone_guard_bends_a_fusion_as_the_guard_of_mefgan_fuse_does(traced_guard, flaw, scale):
    import tensorflow as tf

    under, over = (cv2.resize(image.astype(np.float32) / 255.0, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
                   for image in sample_pair("coffee", 2.0))
    reference = mertens([over, under])
    fusion = {"veil": veiled(reference), "darker": np.power(reference, 1.6), "dull": np.power(reference * 0.8, 1.6),
              "paler": paler(reference), "faded": paler(veiled(reference, 0.2), 0.4),
              "dark colours": dark_colours(reference, 0.3), "none": reference}[flaw].astype(np.float32)
    curve = tone_guard(fusion, [over, under])
    assert curve.identity == (flaw == "none")
    graph = traced_guard(tf.constant(fusion), tf.constant(over), tf.constant(under)).numpy()
    assert np.abs(graph - curve(fusion)).max() < (0.5 if scale == 1 else 1.5) / 255  # TensorFlow's area resize rounds apart


def test_the_graph_mertens_weighs_grey_and_clipped_exposures_by_opencvs_own_rounding():
    import tensorflow as tf

    from mefgan_tf.tone import graph_mertens

    image = np.random.default_rng(3).random((64, 80, 3), dtype=np.float32)
    grey = np.repeat(image.mean(-1, keepdims=True), 3, axis=-1)  # no saturation but OpenCV's float rounding
    for pair in ([grey, grey * 0.5], [grey, np.ones_like(grey)]):
        np.testing.assert_allclose(graph_mertens([tf.constant(e) for e in pair]).numpy(), mertens(pair), atol=1e-5)
