"""Alignment and deghosting of hand-held brackets (``mefgan_tf.align``), measured on real brackets.

* ``still``: every real bracket as shot: what alignment does to it, how far the Mertens fusion
  of the prepared frames is from that of the frames as given (PSNR), and for each frame it moved,
  how well it matches the reference before and after (``match``).
* ``moved``: extreme and close pairs of each scene, and its middle frame at two exposures 3 stops
  apart, moved as a hand-held camera would move them (``data_prep.handheld``: up to 5% of the side
  and 3 degrees, zoom and tilt): the error of the recovered motion at the corners, the PSNR of the
  fusion of the aligned pair against the fusion of the truly aligned pair (whole image, and inside
  the area that every frame saw), MEF-SSIM of both against the truly aligned frames, and the same
  for the fusion of the moved pair unaligned. The truly aligned pair is the still pair with its own
  residual motion removed (found on the crop the moved pair shows, chained through the bracket's
  frames between the two), and that residual is part of the true motion; ``answer_spread_px`` says
  how far the same residual chained two frames at a time is (how well the answer itself is known;
  the summary counts apart the pairs where that is under half a pixel). ``jpeg_*``: the same moved
  pair saved as JPEG files (quality 95) and read back, as a user's files would be. The one photo at two
  exposures has no residual, so its answer is exact.
* ``consistency``: each extreme pair moved by three other hand-held motions; the pair's own motion that
  alignment implies should not depend on what the hand did, so how far apart those are says how
  precise alignment is without any answer (``consistency_px``).
* ``still`` also gives, for each frame alignment moved, a second opinion: how far the feature
  matches alone (without ECC) put the corners from the motion found.
* ``ghost``: an object pasted at one place in the reference and another in the other frame of a
  close pair (aligned first, as `--align --deghost` would): PSNR,
  inside both places and outside them (beyond a band of ``GHOST_BAND``), of the fusion against the
  fusion of the pair with the object where the reference has it, with and without deghosting; and
  outside them, against the deghosted fusion of that pair (what the object itself changed, apart
  from what deghosting takes from the reference where the real scene moved, such as water).
* ``bad``: a frame of another scene and a blank frame: what alignment says; ``other_scenes``: how many
  of 78 pairs of frames of two different scenes it moves (``other_scenes``).
* ``photos``: exact answers from the 42 well-exposed photos, each shot as a camera would shoot a
  still bracket (``data_prep.synth.camera_bracket``: one response curve and JPEG quality per bracket,
  sensor noise per frame): ``still`` (brackets of 3 exposures 1.5, 2 and 3 stops apart: how many
  frames alignment moves, and the fusion against that of the frames as given), ``moved_6_stops``
  (two exposures 6 stops apart moved by a hand-held motion: the recovered motion's error at the
  corners), ``moved_small`` (two exposures 2 stops apart moved by about 2 pixels at most at the corners,
  ``small_handheld``), ``moved_water`` (two exposures 2 stops apart moved by hand-held motions, the bottom
  ``WATER`` of each frame showing content of its own, as water that moved: ``with_water``; the error
  at the corners of the frame and at those of the part that stayed still) and
  ``ghost`` (as ``ghost``, on brackets of 3 exposures 1 stop apart, so that nothing else moved).
* ``time_12mp``: alignment (and deghosting) of a 4000 x 3000 pair.

* ``network`` (with ``MEFGAN_ALIGN_NETWORK=1``): close pairs of a few scenes at 600 px, moved, aligned
  and fused by the shipped generator: PSNR against its fusion of the truly aligned pair.

Run: ``python -m benchmarks.run --only align`` (or ``python -m benchmarks.bench_align``);
``MEFGAN_ALIGN_SCENES=a,b`` limits the scenes.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cv2
import numpy as np

from mefgan_tf import align, metrics
from mefgan_tf.baselines import mertens
from mefgan_tf.data_prep.handheld import Handheld, corner_error, crop_box, handheld, motion_matrix, paste_object, random_handheld
from mefgan_tf.data_prep.synth import camera_bracket
from mefgan_tf.images import read_image, to_uint8
from mefgan_tf.scenes import exposure_order, find_scenes, middle

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
NETWORK_SCENES = ("cwz_library3", "hsinyuan_wine", "s4816577_building", "thejackys_lounge")
WATER = 0.35  # share of the frame (its bottom) that ``with_water`` fills with content of its own in each frame
CONSISTENCY_MOTIONS, CONSISTENCY_SEED = 3, 100  # hand-held motions per extreme pair in ``consistency``, the first seed
GHOST_BAND = 0.04  # "outside" leaves out this share of the long side around the object's places (the feather)
HELD_OUT = ("choupingru_temple", "cwz_library3", "felipe_frozenlake", "hsinyuan_wine", "jackycjl_2", "jackycjl_3",
            "mercury_fog", "rchen19_bedroom", "s4816577_building", "ssarcandy_desktop", "syclin_treebranch",
            "thejackys_lounge")


def brackets() -> dict[str, list[np.ndarray]]:
    """The held-out real brackets and those of ``brackets/``, frames darkest first."""
    chosen = os.environ.get("MEFGAN_ALIGN_SCENES")
    folders = [SHARED / "brackets_real" / n for n in HELD_OUT] + [s.folder for s in find_scenes(SHARED / "brackets")]
    found = {}
    for folder in folders:
        if chosen and folder.name not in chosen.split(","):
            continue
        frames = [read_image(p) for p in sorted(folder.iterdir()) if p.suffix.lower() in (".jpg", ".png", ".tif")]
        found[folder.name] = [frames[i] for i in exposure_order(frames)]
    return found


def photos() -> dict[str, np.ndarray]:
    """The well-exposed photos (Kodak and McMaster), by file name."""
    files = sorted(p for p in (SHARED / "photos").rglob("*") if p.suffix.lower() in (".png", ".tif"))
    return {p.name: read_image(p) for p in files}


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float:
    diff = (np.asarray(a, np.float64) - b) ** 2
    mse = float(diff[where].mean() if where is not None else diff.mean())
    return 99.0 if mse == 0 else 10 * np.log10(1.0 / mse)


def mef_ssim(frames: list[np.ndarray], fused: np.ndarray) -> float:
    return metrics.Sources(to_uint8(frames[-1]), to_uint8(frames[0]), [to_uint8(f) for f in frames]).mef_ms_ssim(
        to_uint8(fused))


def still(scenes: dict[str, list[np.ndarray]]) -> dict:
    """What alignment and deghosting do to the real brackets as shot."""
    rows = {}
    for name, frames in scenes.items():
        start = time.perf_counter()
        aligned, notes = align.prepare(frames, align=True, deghost=False)
        seconds = time.perf_counter() - start
        both, ghost_notes = align.prepare(frames, align=True, deghost=True)
        base = mertens(frames)
        ref = align.best_exposed(frames)
        moved = [i for i, (a, f) in enumerate(zip(aligned, frames)) if a is not f]
        rows[name] = {
            "frames": len(frames), "moved": len(moved),
            "match_before": [round(match(frames[ref], frames[i]), 3) for i in moved],
            "match_after": [round(match(frames[ref], aligned[i]), 3) for i in moved],
            "features_check": [features_check(frames[ref], frames[i]) for i in moved],
            "psnr_align_db": round(psnr(mertens(aligned), base), 1),
            "psnr_align_deghost_db": round(psnr(mertens(both), base), 1),
            "deghosted_frames": sum("moving things" in n for n in ghost_notes),
            "seconds": round(seconds, 2), "notes": notes + [n for n in ghost_notes if "moving things" in n],
        }
    return rows


def features_check(reference: np.ndarray, frame: np.ndarray) -> dict | None:
    """A second opinion on a motion alignment found: the frame's motion found directly (corner motion,
    pixels) and how far the feature matches alone (SIFT and MAGSAC, without ECC) put the corners from
    it; None where the frame was aligned through a neighbour or no features matched."""
    direct = align.find_motion(reference, frame)
    ref_luma, frame_luma = align.luma(reference), align.luma(frame)
    (_, _, ref_mask, frame_mask), tones = align.aligned_views(ref_luma, frame_luma)
    features = align.feature_start(*tones, ref_mask, frame_mask)
    if direct.status != "moved" or features is None or max(reference.shape) > align.ESTIMATE_SIDE:
        return None
    height, width = reference.shape[:2]
    return {"corner_motion_px": round(align.corner_motion(direct.matrix, height, width), 2),
            "features_apart_px": round(corner_error(features, direct.matrix, height, width), 2)}


def match(reference: np.ndarray, frame: np.ndarray) -> float:
    """ECC correlation of the exposure-matched gradient views that alignment works on (1: identical)."""
    ref_view, frame_view = align.shrunk(align.luma(reference), 1600)[0], align.shrunk(align.luma(frame), 1600)[0]
    (ref_view, frame_view, ref_mask, frame_mask), _ = align.aligned_views(ref_view, frame_view)
    return float(cv2.computeECC(ref_view, frame_view, ref_mask & frame_mask))


def crop(image: np.ndarray) -> np.ndarray:
    top, left, rows, cols = crop_box(*image.shape[:2])
    return image[top : top + rows, left : left + cols]


def residual(frames: list[np.ndarray], ref: int, other: int, stride: int = 1) -> np.ndarray:
    """The real bracket's own motion of ``frames[other]`` against ``frames[ref]`` on the central crop
    that the moved pair shows, chained through the frames between them, ``stride`` at a time
    (neighbours share the most, so the chain is more precise than a direct estimate across a wide
    exposure gap)."""
    step = stride if other > ref else -stride
    chained, k = np.eye(3), ref
    while k != other:
        after = k + step if abs(other - k) >= stride else other
        found = align.find_motion(crop(frames[k]), crop(frames[after]))
        chained = (found.matrix if found.status != "failed" else np.eye(3)) @ chained
        k = after
    return chained


def moved_pair(frames: list[np.ndarray], pair_at: tuple[int, int], seed: int) -> dict:
    """Frames ``pair_at`` of a bracket (darkest first) moved by a random hand-held motion, aligned,
    fused and scored. The answer is the pair with its own residual motion (``residual``) removed;
    where frames lie between the two, ``answer_spread_px`` says how far (at the corners) that residual
    chained two frames at a time is from it: how well the answer itself is known."""
    pair = [frames[i] for i in pair_at]
    ref = align.best_exposed(pair)
    other = 1 - ref
    truth = [crop(f) for f in pair]
    found_residual = residual(frames, pair_at[ref], pair_at[other])
    truth[other] = align.warp_frame(truth[other], truth[ref], found_residual)
    row = scored(pair, ref, random_handheld(pair, ref, seed=seed), truth, found_residual)
    if abs(pair_at[1] - pair_at[0]) > 1:
        other_way = residual(frames, pair_at[ref], pair_at[other], stride=2)
        row["answer_spread_px"] = round(corner_error(other_way, found_residual, *truth[0].shape[:2]), 2)
    return row


def exposed_pair(frames: list[np.ndarray], stops: float, seed: int) -> dict:
    """One photo (the bracket's middle frame) at two exposures ``stops`` apart (linear light, gamma
    2.2, clipped), moved by a random hand-held motion: an answer with no residual motion at all."""
    photo = np.clip(frames[middle(len(frames))], 0.0, 1.0) ** 2.2
    pair = [np.clip(photo * 2.0 ** (sign * stops / 2), 0.0, 1.0) ** (1 / 2.2) for sign in (-1, 1)]
    ref = align.best_exposed(pair)
    return scored(pair, ref, random_handheld(pair, ref, seed=seed), [crop(f) for f in pair], np.eye(3))


def scored(pair: list[np.ndarray], ref: int, hand, truth: list[np.ndarray], own: np.ndarray) -> dict:
    """Alignment of the moved pair ``hand`` against the answer ``truth``; ``own``: the pair's own
    motion (crop pixels), part of the true motion."""
    other = 1 - ref
    height, width = hand.frames[0].shape[:2]
    expected = hand.matrices[other] @ own
    start = time.perf_counter()
    found = align.find_motion(hand.frames[ref], hand.frames[other])
    seconds = time.perf_counter() - start
    aligned, _ = align.prepare(hand.frames, align=True, deghost=False, reference=ref)
    seen = cv2.warpPerspective(np.ones((height, width), np.uint8), expected, (width, height),
                               flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP) > 0
    seen = cv2.erode(seen.astype(np.uint8), np.ones((2 * align.FEATHER_PX + 1,) * 2, np.uint8)) > 0
    answer, ours, unaligned = mertens(truth), mertens(aligned), mertens(hand.frames)
    saved = [jpeg(f) for f in hand.frames]
    as_jpeg = align.find_motion(saved[ref], saved[other])
    return {
        "jpeg_status": as_jpeg.status, "jpeg_rough": bool(as_jpeg.rough),
        "jpeg_corner_error_px": round(corner_error(align.applied(as_jpeg), expected, height, width), 3),
        "status": found.status, "reason": found.reason, "rough": bool(found.rough),
        "corner_error_px": round(corner_error(align.applied(found), expected, height, width), 3),
        "true_corner_motion_px": round(align.corner_motion(expected, height, width), 1),
        "psnr_db": round(psnr(ours, answer), 1), "psnr_seen_db": round(psnr(ours, answer, seen), 1),
        "psnr_unaligned_db": round(psnr(unaligned, answer), 1),
        "mef_ssim_truth": round(mef_ssim(truth, answer), 4), "mef_ssim_aligned": round(mef_ssim(truth, ours), 4),
        "mef_ssim_unaligned": round(mef_ssim(truth, unaligned), 4), "seconds": round(seconds, 2),
    }


def jpeg(image: np.ndarray) -> np.ndarray:
    """``image`` saved as a JPEG file would be (quality 95, as `mefgan` and OpenCV write them) and read back."""
    ok, encoded = cv2.imencode(".jpg", np.ascontiguousarray(to_uint8(image)[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 95])
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255


def moved(scenes: dict[str, list[np.ndarray]]) -> dict:
    rows = {}
    for number, (name, frames) in enumerate(scenes.items()):
        m = middle(len(frames))
        rows[name] = {"extreme": moved_pair(frames, (0, len(frames) - 1), seed=number),
                      "close": moved_pair(frames, (m, m + 1), seed=number),
                      "one_photo_3_stops": exposed_pair(frames, 3.0, seed=number)}
    return rows


def consistency(scenes: dict[str, list[np.ndarray]], motions: int = CONSISTENCY_MOTIONS) -> dict:
    """Each extreme pair moved by ``motions`` different hand-held motions: the pair's own motion that
    alignment implies (the motion found less the hand's) is the same whatever the hand did, so how far
    apart those are at the corners (``consistency_px``, the largest over every two of them) is how
    precise alignment is, with no answer needed (a bias common to all goes unseen)."""
    rows = {}
    for name, frames in scenes.items():
        pair = [frames[0], frames[-1]]
        ref = align.best_exposed(pair)
        own, found = [], []
        for seed in range(CONSISTENCY_SEED, CONSISTENCY_SEED + motions):
            hand = random_handheld(pair, ref, seed=seed)
            found.append(align.find_motion(hand.frames[ref], hand.frames[1 - ref]))
            if found[-1].status == "moved":
                own.append(np.linalg.inv(hand.matrices[1 - ref]) @ found[-1].matrix)
        height, width = hand.frames[0].shape[:2]
        apart = [corner_error(a, b, height, width) for k, a in enumerate(own) for b in own[k + 1 :]]
        rows[name] = {"aligned": len(own), "aligned_roughly": sum(bool(m.rough) for m in found),
                      "consistency_px": round(max(apart), 3) if apart else None}
    return rows


def ghost(scenes: dict[str, list[np.ndarray]]) -> dict:
    """An object (a patch of another scene) at one place in the reference, at another in the other frame."""
    rows, names = {}, list(scenes)
    for number, (name, frames) in enumerate(scenes.items()):
        m = middle(len(frames))
        pair = align.prepare([frames[m], frames[m + 1]], align=True, deghost=False)[0]  # as --align --deghost
        ref = align.best_exposed(pair)
        other = 1 - ref
        height, width = pair[0].shape[:2]
        side = min(height, width) // 5
        donor = scenes[names[(number + 1) % len(names)]][middle(len(scenes[names[(number + 1) % len(names)]]))]
        patch = cv2.resize(donor, (side, side), interpolation=cv2.INTER_AREA)
        curves = align.exposure_curves(pair[ref], pair[other])
        spots = {ref: (height // 4, width // 5), other: (height // 2, width // 2)}
        place = {i: paste_object(pair[i], patch if i == ref else align.apply_curves(curves, patch), *spots[i])
                 for i in (0, 1)}
        ghosted = [place[0], place[1]]
        consistent = [pair[0].copy(), pair[1].copy()]
        consistent[ref] = place[ref]
        consistent[other] = paste_object(pair[other], align.apply_curves(curves, patch), *spots[ref])
        inside, near = np.zeros((height, width), bool), np.zeros((height, width), bool)
        band = round(GHOST_BAND * max(height, width))
        for top, left in spots.values():
            inside[top : top + side, left : left + side] = True
            near[max(0, top - band) : top + side + band, max(0, left - band) : left + side + band] = True
        answer = mertens(consistent)
        row = {}
        for setting in (False, True):
            prepared, notes = align.prepare(ghosted, align=False, deghost=setting)
            fused = mertens(prepared)
            key = "deghost" if setting else "plain"
            row[key] = {"psnr_inside_db": round(psnr(fused, answer, inside), 1),
                        "psnr_outside_db": round(psnr(fused, answer, ~near), 1),
                        "changed_outside": float(np.abs(fused - answer)[~near].max() > 0.5 / 255)}
        deghosted_still = mertens(align.prepare(consistent, align=False, deghost=True)[0])
        row["deghost"]["psnr_outside_vs_deghosted_still_db"] = round(psnr(fused, deghosted_still, ~near), 1)
        rows[name] = row
    return rows


def bad(scenes: dict[str, list[np.ndarray]]) -> dict:
    names = list(scenes)
    first, second = scenes[names[0]], scenes[names[1 % len(names)]]
    frame = cv2.resize(second[middle(len(second))], first[0].shape[1::-1])
    blank = np.full_like(first[0], 0.5)
    return {"another_scene": align.prepare([first[middle(len(first))], frame], deghost=False)[1],
            "blank": align.prepare([first[middle(len(first))], blank], deghost=False)[1]}


def other_scenes(scenes: dict[str, list[np.ndarray]], shots: dict[str, np.ndarray]) -> dict:
    """Frames of two different scenes: each real bracket's middle frame against the next bracket's, its
    darkest against the next one's brightest, and each photo 1 stop under against the next photo 1
    stop over: how many alignment moves (none should be, not even roughly)."""
    pairs, names, photo_names = [], list(scenes), list(shots)
    for i, name in enumerate(names):
        first, second = scenes[name], scenes[names[(i + 1) % len(names)]]
        for a, b in ((middle(len(first)), middle(len(second))), (0, len(second) - 1)):
            pairs.append((first[a], cv2.resize(second[b], first[0].shape[1::-1])))
    for i, name in enumerate(photo_names):
        other = cv2.resize(shots[photo_names[(i + 1) % len(photo_names)]], shots[name].shape[1::-1])
        pairs.append((camera_bracket(shots[name], (-1.0, 1.0), i)[0], camera_bracket(other, (-1.0, 1.0), i)[1]))
    found = [align.find_motion(*pair) for pair in pairs]
    return {"pairs": len(found), "moved": sum(m.status == "moved" for m in found),
            "moved_roughly": sum(bool(m.rough) for m in found), "still": sum(m.status == "still" for m in found)}


def time_12mp(scenes: dict[str, list[np.ndarray]]) -> dict:
    frames = next(iter(scenes.values()))
    m = middle(len(frames))
    pair = [cv2.resize(f, (5000, 3750), interpolation=cv2.INTER_CUBIC) for f in (frames[m], frames[m + 1])]  # 4000 x 3000 crop
    hand = random_handheld(pair, align.best_exposed(pair), seed=3)
    start = time.perf_counter()
    align.prepare(hand.frames, align=True, deghost=False)
    aligned = time.perf_counter() - start
    start = time.perf_counter()
    align.prepare(hand.frames, align=True, deghost=True)
    return {"size": list(hand.frames[0].shape[:2]), "align_seconds": round(aligned, 2),
            "align_and_deghost_seconds": round(time.perf_counter() - start, 2)}


def photo_brackets(shots: dict[str, np.ndarray]) -> dict:
    """What alignment does to still brackets, and how precisely it recovers a known motion, on brackets
    with an exact answer (``camera_bracket`` of each photo)."""
    rows: dict = {"still": {}, "moved_6_stops": {}, "moved_small": {}, "moved_water": {}}
    names = list(shots)
    for seed, (name, photo) in enumerate(shots.items()):
        for spread in (1.5, 2.0, 3.0):
            frames = camera_bracket(photo, (-spread, 0.0, spread), seed)
            aligned, notes = align.prepare(frames, align=True, deghost=False)
            moved = sum(a is not f for a, f in zip(aligned, frames))
            rows["still"][f"{name} +-{spread}"] = {"moved": moved, "notes": notes,
                                                   "psnr_db": round(psnr(mertens(aligned), mertens(frames)), 1)}
        for key, stops in (("moved_6_stops", 6.0), ("moved_small", 2.0), ("moved_water", 2.0)):
            pair = camera_bracket(photo, (-stops / 2, stops / 2), seed)
            if key == "moved_water":
                donors = [shots[names[(seed + k) % len(names)]] for k in (1, 2)]
                pair = with_water(pair, donors, (-stops / 2, stops / 2), seed)
            ref = align.best_exposed(pair)
            hand = small_handheld(pair, ref, seed) if key == "moved_small" else random_handheld(pair, ref, seed=seed)
            found = align.find_motion(hand.frames[ref], hand.frames[1 - ref])
            height, width = hand.frames[0].shape[:2]
            rows[key][name] = {"status": found.status, "reason": found.reason, "rough": bool(found.rough),
                               "true_corner_motion_px": round(align.corner_motion(hand.matrices[1 - ref], height, width), 2),
                               "corner_error_px": round(corner_error(align.applied(found), hand.matrices[1 - ref], height, width), 3)}
            if key == "moved_water":  # the corners of the part that stayed still: the water's corners are extrapolated
                still_rows = round(photo.shape[0] * (1 - WATER)) - crop_box(*photo.shape[:2])[0]
                rows[key][name]["still_part_corner_error_px"] = round(
                    corner_error(align.applied(found), hand.matrices[1 - ref], still_rows, width), 3)
    rows["ghost"] = ghost({name: camera_bracket(photo, (-1.0, 0.0, 1.0), seed)
                           for seed, (name, photo) in enumerate(shots.items())})
    return rows


def with_water(pair: list[np.ndarray], donors: list[np.ndarray], evs: tuple[float, float], seed: int) -> list[np.ndarray]:
    """``pair`` with its bottom ``WATER`` of each frame showing content of its own (a crop of
    ``donors[i]``, shot at frame i's exposure): what moved between the frames, as water does, where
    nothing of the scene's motion is."""
    rng = np.random.default_rng(seed)
    height, width = pair[0].shape[:2]
    top = round(height * (1 - WATER))
    found = []
    for i, (frame, donor) in enumerate(zip(pair, donors)):
        donor = cv2.resize(donor, (width, round(donor.shape[0] * width / donor.shape[1]))) if donor.shape[1] < width else donor
        y, x = rng.integers(0, donor.shape[0] - (height - top) + 1), rng.integers(0, donor.shape[1] - width + 1)
        frame = frame.copy()
        frame[top:] = camera_bracket(donor[y : y + height - top, x : x + width], evs, seed)[i]
        found.append(frame)
    return found


def small_handheld(pair: list[np.ndarray], ref: int, seed: int) -> Handheld:
    """``pair`` with the frame other than ``ref`` moved by at most about 2 pixels at the corners: a shift
    of up to a pixel, a turn of up to 0.05 degrees, a zoom and a tilt within 0.05% of the side."""
    rng = np.random.default_rng(seed)
    _, _, rows, cols = crop_box(*pair[0].shape[:2])
    motion = motion_matrix(rows, cols, tuple(rng.uniform(-1, 1, 2)), rng.uniform(-0.05, 0.05),
                           rng.uniform(0.9995, 1.0005), tuple(rng.uniform(-0.0005, 0.0005, 2)))
    return handheld(pair, ref, [None if i == ref else motion for i in range(len(pair))])


def network(scenes: dict[str, list[np.ndarray]], names: tuple[str, ...] = NETWORK_SCENES) -> dict:
    """The same as ``moved`` for close pairs at 600 px, fused by the shipped generator instead of Mertens."""
    from mefgan_tf.api import load_model

    fuser = load_model()
    rows = {}
    for number, name in enumerate(n for n in names if n in scenes):
        frames = [cv2.resize(f, (600, round(600 * f.shape[0] / f.shape[1])), interpolation=cv2.INTER_AREA)
                  for f in scenes[name]]
        m = middle(len(frames))
        pair = [frames[m], frames[m + 1]]
        ref = align.best_exposed(pair)
        truth = [crop(f) for f in pair]
        truth[1 - ref] = align.warp_frame(truth[1 - ref], truth[ref], residual(frames, m + ref, m + 1 - ref))
        hand = random_handheld(pair, ref, seed=number)
        aligned, _ = align.prepare(hand.frames, align=True, deghost=False, reference=ref)
        answer = fuser(truth)
        rows[name] = {"psnr_db": round(psnr(fuser(aligned), answer), 1),
                      "psnr_unaligned_db": round(psnr(fuser(hand.frames), answer), 1)}
    return rows


def summary(result: dict) -> dict:
    """Per kind of moved pair: how many were aligned, refused, within half a pixel at the corners; the
    worst corner error, fusion PSNR (seen area, whole) and MEF-SSIM loss of those aligned."""
    found = {}
    for kind in ("close", "extreme", "one_photo_3_stops"):
        every = [scene[kind] for scene in result["moved"].values()]
        rows = [r for r in every if r["status"] == "moved"]  # the pairs refused with a note are counted apart
        known = [r for r in rows if r.get("answer_spread_px", 0.0) <= 0.5]
        found[kind] = {
            "pairs": len(every), "aligned": len(rows), "refused": len(every) - len(rows),
            "aligned_roughly": sum(r["rough"] for r in rows),
            "within_half_px": sum(r["corner_error_px"] <= 0.5 for r in rows),
            "answer_known_within_half_px": sum(r.get("answer_spread_px", 0.0) <= 0.5 for r in every),
            "aligned_where_answer_known": len(known),
            "within_half_px_where_answer_known": sum(r["corner_error_px"] <= 0.5 for r in known),
            "worst_corner_error_px": max((r["corner_error_px"] for r in rows), default=None),
            "median_corner_error_px": float(np.median([r["corner_error_px"] for r in rows])) if rows else None,
            "saved_as_jpeg": {"aligned": sum(r["jpeg_status"] == "moved" for r in every),
                              "aligned_roughly": sum(r["jpeg_rough"] for r in every),
                              "within_half_px": sum(r["jpeg_status"] == "moved" and r["jpeg_corner_error_px"] <= 0.5 for r in every),
                              "worst_corner_error_px": max((r["jpeg_corner_error_px"] for r in every if r["jpeg_status"] == "moved"),
                                                           default=None)},
            "min_psnr_seen_db": min((r["psnr_seen_db"] for r in rows), default=None),
            "min_psnr_db": min((r["psnr_db"] for r in rows), default=None),
            "worst_mef_ssim_loss": max((round(r["mef_ssim_truth"] - r["mef_ssim_aligned"], 4) for r in rows),
                                       default=None),
            "unaligned_psnr_db": [min(r["psnr_unaligned_db"] for r in every), max(r["psnr_unaligned_db"] for r in every)],
        }
    for kind in ("moved_6_stops", "moved_small", "moved_water"):
        every = list(result["photos"][kind].values())
        errors = [r["corner_error_px"] for r in every]  # a frame left as is counts with its whole motion
        found[f"photos_{kind}"] = {
            "pairs": len(every), "aligned": sum(r["status"] == "moved" for r in every),
            "aligned_roughly": sum(r["rough"] for r in every),
            "within_half_px": int(sum(e <= 0.5 for e in errors)), "worst_corner_error_px": max(errors),
            "median_corner_error_px": float(np.median(errors)),
        }
        if kind == "moved_water":
            still_part = [r["still_part_corner_error_px"] for r in every]
            found[f"photos_{kind}"].update(still_part_within_half_px=int(sum(e <= 0.5 for e in still_part)),
                                           still_part_median_px=float(np.median(still_part)))
    measured = [r for r in result["consistency"].values() if r["consistency_px"] is not None]
    found["extreme_consistency"] = {
        "pairs": len(result["consistency"]), "aligned_under_every_motion": sum(
            r["aligned"] == CONSISTENCY_MOTIONS for r in result["consistency"].values()),
        "within_half_px": sum(r["consistency_px"] <= 0.5 for r in measured),
        "median_px": float(np.median([r["consistency_px"] for r in measured])) if measured else None,
        "worst_px": max((r["consistency_px"] for r in measured), default=None)}
    stills = list(result["photos"]["still"].values())
    found["photos_still"] = {"brackets": len(stills), "frames": 2 * len(stills),
                             "frames_moved": sum(r["moved"] for r in stills),
                             "min_psnr_db": min(r["psnr_db"] for r in stills)}
    found["ghost"], found["photos_ghost"] = ghost_summary(result["ghost"]), ghost_summary(result["photos"]["ghost"])
    still_rows = list(result["still"].values())
    found["other_scenes"] = result["other_scenes"]
    found["still"] = {
        "frames_moved": sum(r["moved"] for r in still_rows),
        "brackets_untouched": sum(r["moved"] == 0 for r in still_rows),
        "min_psnr_align_db": min(r["psnr_align_db"] for r in still_rows),
        "min_psnr_align_deghost_db": min(r["psnr_align_deghost_db"] for r in still_rows),
    }
    return found


def ghost_summary(rows: dict) -> dict:
    """Deghosting a pasted object: the fusion inside the object's two places (worst, median) and how
    many scenes are 45 dB or more from the answer outside them (and from the deghosted answer)."""
    every = [r["deghost"] for r in rows.values()]
    inside = [r["psnr_inside_db"] for r in every]
    return {"scenes": len(every), "min_psnr_inside_db": min(inside), "median_psnr_inside_db": float(np.median(inside)),
            "min_psnr_outside_db": min(r["psnr_outside_db"] for r in every),
            "outside_45_db": int(sum(r["psnr_outside_db"] >= 45 for r in every)),
            "outside_45_db_vs_deghosted_still": int(sum(r["psnr_outside_vs_deghosted_still_db"] >= 45 for r in every))}


def run() -> dict:
    if not (SHARED / "brackets_real").is_dir():
        return {"skipped": f"no brackets at {SHARED}"}
    scenes = brackets()
    shots = photos()
    result = {"still": still(scenes), "moved": moved(scenes), "consistency": consistency(scenes),
              "ghost": ghost(scenes), "bad": bad(scenes),
              "other_scenes": other_scenes(scenes, shots), "photos": photo_brackets(shots), "time_12mp": time_12mp(scenes)}
    if os.environ.get("MEFGAN_ALIGN_NETWORK"):
        result["network"] = network(scenes)
    result["summary"] = summary(result)
    return json.loads(json.dumps(result, default=lambda value: value.item()))  # NumPy scalars as Python numbers


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
