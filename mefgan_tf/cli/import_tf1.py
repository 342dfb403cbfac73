"""`mefgan import-tf1`: convert the authors' TF1 checkpoint into a mefgan-tf checkpoint (``tf1.import_tf1``)."""
from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", metavar="CKPT_PREFIX", help="the original checkpoint prefix (e.g. model/model.ckpt) or its folder")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the converted checkpoint (created)")


def run(args: argparse.Namespace) -> int:
    from mefgan_tf.tf1 import import_tf1

    path = import_tf1(args.checkpoint, args.out)
    print(f"imported {args.checkpoint} -> {path}")
    return 0
