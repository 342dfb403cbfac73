"""``mefgan patches``: cut an HDF5 file of training patches from SICE, brackets or photos (``data_prep.build``)."""
from __future__ import annotations

import argparse
import dataclasses

from mefgan_tf.cli.types import finite_float
from mefgan_tf.data_prep.build import SAMPLE_VARIANTS, PatchOptions
from mefgan_tf.data_prep.references import CANDIDATES, PAIRINGS, REFERENCE_CHOICES


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of ``mefgan patches``."""
    parser.description = (
        "Cut an HDF5 file of training patches (uint8 [N, size, size, 9]: over | under | ground truth). "
        "Sources may be combined and repeated. With no source, a small sample set is built from the "
        "photos bundled with scikit-image, so training can be tried without any download."
    )
    src = parser.add_argument_group("sources (each may be repeated)")
    src.add_argument("--sice", action="append", default=[], metavar="DIR",
                     help="SICE folder: scene folders of exposures and Label/<scene>.<ext> (a Part or a parent of "
                     "Parts); the brightest and darkest exposure by mean luminance, the label is the ground truth")
    src.add_argument("--brackets", action="append", default=[], metavar="DIR",
                     help="folder of aligned exposure brackets, one sub-folder per scene; the ground truth is the "
                     "Mertens exposure fusion of the whole bracket")
    src.add_argument("--reference", choices=REFERENCE_CHOICES, default="mertens",
                     help="ground truth of --brackets scenes: 'mertens' is the Mertens exposure fusion of the whole "
                     "bracket; 'best' makes several candidates from the whole bracket (" + ", ".join(CANDIDATES) +
                     ") and keeps, per scene, the one with the highest MEF-SSIM against all its frames, as SICE "
                     "picked its labels among many methods (slower; the choice is recorded per scene); 'pair' is the "
                     "Mertens fusion of each training pair alone, which scores far higher against that pair on "
                     "MEF-SSIM and Q^AB/F, the metrics `mefgan evaluate` reports; 'mix' cuts every pair twice, with "
                     "'mertens' and with 'pair' (the data of the shipped generator's last stage; either alone "
                     "trained a worse model) (default: %(default)s)")
    src.add_argument("--extra-pairs", type=finite_float, default=None, metavar="STOPS",
                     help="--brackets augmentation: besides (brightest, darkest), also cut (second brightest, "
                     "darkest) and (brightest, second darkest) where their exposure gap, estimated from the "
                     "frames, is at least STOPS (default: off)")
    src.add_argument("--pairing", action="append", default=[], choices=PAIRINGS,
                     help="--brackets: which frames are paired (repeatable; the union is cut): 'extreme' the "
                     "darkest with the brightest, as SICE pairs; 'adjacent' each frame with the next brighter one "
                     "(the close pairs phones shoot); 'same' each frame with itself, whose reference is the frame "
                     "(a fusion of x with x is x); 'all' every pair of frames, itself included. A whole-bracket "
                     "--reference is given to the extreme pair (and --extra-pairs) only; every other pair gets "
                     "its own Mertens fusion, as with 'pair' (default: extreme)")
    src.add_argument("--align", action="store_true",
                     help="--brackets: align each bracket's frames to its best-exposed one first, as `mefgan fuse "
                     "--align` (hand-held brackets; frames already aligned are left as they are)")
    src.add_argument("--photos", action="append", default=[], metavar="DIR",
                     help="folder of well-exposed photos; under- and over-exposures are simulated")
    out = parser.add_argument_group("output")
    out.add_argument("--out", default="data/patches.h5", metavar="FILE",
                     help="output HDF5 file; held-out scenes go to <stem>_val.h5 (default: %(default)s)")
    out.add_argument("--size", type=int, default=PatchOptions.size, metavar="N",
                     help="patch size in pixels (default: %(default)s)")
    out.add_argument("--stride", type=int, default=None, metavar="N",
                     help="distance between patches in pixels (default: half of --size)")
    out.add_argument("--scale", type=finite_float, default=1.0, metavar="F",
                     help="resize factor applied to every image before cutting; SICE frames are up to 6000x4000, "
                     "and 0.25 gives a few hundred patches per scene (default: %(default)s)")
    out.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                     help="leave out every scene whose folder or photo name matches this shell pattern (case "
                     "ignored; repeatable), e.g. --exclude House to keep a public test sequence out of training")
    out.add_argument("--val-fraction", type=finite_float, default=0.0, metavar="F",
                     help="fraction of whole scenes held out into the validation file (default: %(default)s)")
    out.add_argument("--seed", type=int, default=0, metavar="N",
                     help="seed of the scene split and of the simulated exposures (default: %(default)s)")
    syn = parser.add_argument_group("simulated exposures (--photos and the sample set)")
    syn.add_argument("--ev-range", type=finite_float, nargs=2, default=[1.0, 3.0], metavar=("LO", "HI"),
                     help="exposure offsets in stops, drawn uniformly for the under and for the over image "
                     "(default: 1.0 3.0)")
    syn.add_argument("--camera", action="store_true",
                     help="make the pairs look like real camera brackets: a random camera response curve per "
                     "pair instead of sRGB's, and JPEG compression (quality 75-95); use with e.g. --ev-range 1 4 "
                     "(default: off)")
    syn.add_argument("--photo-variants", type=int, default=None, metavar="K",
                     help=f"exposure pairs per photo (default: 1; {SAMPLE_VARIANTS} for the sample set)")
    syn.add_argument("--shot-noise", type=finite_float, default=0.0005, metavar="A",
                     help="shot-noise variance per unit of linear signal (default: %(default)s)")
    syn.add_argument("--read-noise", type=finite_float, default=0.001, metavar="B",
                     help="read-noise standard deviation in linear light (default: %(default)s)")
    run_ = parser.add_argument_group("behaviour")
    run_.add_argument("--strict", action="store_true",
                      help="stop at the first bad scene (unreadable, mismatched, no label) instead of skipping it")
    run_.add_argument("-y", "--overwrite", action="store_true",
                      help="replace --out (and <stem>_val.h5) if they exist; a validation file left by an earlier "
                      "run is removed when this run makes none (default: refuse, naming the file)")
    run_.add_argument("--quiet", action="store_true", help="no progress bar")


def patch_options(args: argparse.Namespace) -> PatchOptions:
    """The options of ``build`` from the parsed command line."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(PatchOptions)}
    for name in ("sice", "brackets", "photos", "exclude", "ev_range", "pairing"):
        values[name] = tuple(values[name])
    return PatchOptions(**values)


def run(args: argparse.Namespace) -> int:
    from mefgan_tf.data_prep.build import build, report

    print(report(build(patch_options(args))))
    return 0
