"""TensorFlow Serving's REST protocol for the fusion model: parsing ``:predict`` bodies and writing
the answers, with no web framework (``serve.app`` serves it).

The endpoints are TensorFlow Serving's, for the model name ``mefgan``:

- ``GET /v1/models/mefgan[/versions/N]``: the model's status (``status_body``);
- ``GET /v1/models/mefgan[/versions/N]/metadata``: its two signatures as ``mefgan export`` writes
  them (``metadata_body``, from ``export.SIGNATURES``);
- ``POST /v1/models/mefgan[/versions/N]:predict``: ``fuse_images`` (``{"b64": ...}`` JPEG/PNG in,
  ``{"b64": ...}`` PNG out) or ``serving_default`` (float [H, W, 3] in [0, 1] in and out), in the
  row (``instances`` -> ``predictions``) or columnar (``inputs`` -> ``outputs``) format
  (``parse_predict``, ``answer``). One extension: a ``fuse_images`` instance may give
  ``exposures_bytes``, a list of two or more images, instead of ``over_bytes`` and ``under_bytes``.

Every problem with a request is a ``RequestError``: an HTTP status and one line naming the field.
"""
# No `from __future__ import annotations`: FastAPI reads the handlers' annotations at run time.
import base64
import binascii
import io
import json
import sys
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from mefgan_tf.errors import CommandError
from mefgan_tf.export import BYTES_SIGNATURE, FLOAT_SIGNATURE, SIGNATURES

MODEL_NAME = "mefgan"
DEFAULT_MAX_BODY_MB = 64.0
DEFAULT_MAX_MEGAPIXELS = 50.0  # per decoded image: bounds memory against small files of huge images
DEFAULT_TIMEOUT_S = 600.0
MIN_SIDE = 8  # the CLI's rule (fusion.pad_to_multiple)
EXPOSURES_INPUT = "exposures_bytes"  # our extension of fuse_images: 2 or more images in one list
DATA_TYPES = {"float32": "DT_FLOAT", "string": "DT_STRING"}  # TensorFlow's DataType names of the signatures' dtypes
# The output tensor of each signature in the exported graph (checked against a real export by the tests).
OUTPUT_TENSORS = {FLOAT_SIGNATURE: "StatefulPartitionedCall_1:0", BYTES_SIGNATURE: "StatefulPartitionedCall:0"}


def signature_inputs(signature: str) -> tuple[str, ...]:
    return tuple(SIGNATURES[signature][0])


class RequestError(Exception):
    """A request the server refuses: HTTP ``status`` with a one-line ``message``."""

    def __init__(self, message: str, status: int = 400, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


@dataclass(frozen=True)
class Limits:
    """What one request may ask for."""

    max_body_bytes: int = int(DEFAULT_MAX_BODY_MB * 2**20)
    max_pixels: int = int(DEFAULT_MAX_MEGAPIXELS * 1e6)
    timeout_s: float = DEFAULT_TIMEOUT_S


DEFAULT_LIMITS = Limits()


@dataclass
class Prediction:
    """A parsed ``:predict`` request: per instance, the exposures to fuse (float32 RGB in [0, 1])."""

    signature: str
    columnar: bool  # "inputs" (answered with "outputs") rather than "instances" ("predictions")
    scenes: list[list[np.ndarray]]


def parse_json(body: bytes) -> dict:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise RequestError(f"request body is not UTF-8 text (byte {err.start}): JSON must be UTF-8") from None
    try:
        request = json.loads(text)
    except json.JSONDecodeError as err:
        raise RequestError(f"request body is not valid JSON: {err}") from None
    except RecursionError:
        raise RequestError("request body is not valid JSON here: it is nested too deeply") from None
    if not isinstance(request, dict):
        raise RequestError('request body must be a JSON object with "instances" or "inputs"')
    return request


def decode_b64(value: Any, where: str) -> bytes:
    if not (isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str)):
        raise RequestError(f'{where} must be {{"b64": "<base64 JPEG/PNG>"}}')
    try:
        return base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(f"{where} is not valid base64") from None


def image_pixels(data: bytes) -> int | None:
    """Width x height from the file's header (no decoding), or None if PIL cannot tell."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.width * image.height
    except Image.DecompressionBombError:
        return sys.maxsize
    except Exception:  # noqa: BLE001 - any header PIL cannot read: OpenCV decides below
        return None


def decode_exposure(data: bytes, where: str, limits: Limits) -> np.ndarray:
    """RGB float32 [0, 1] of an encoded image (8 or 16 bits, EXIF orientation applied)."""
    from mefgan_tf.images import decode_image_raw, to_float

    pixels = image_pixels(data)
    if pixels is not None and pixels > limits.max_pixels:
        raise RequestError(f"{where} is larger than this server's limit of {limits.max_pixels / 1e6:g} megapixels", 413)
    try:
        image = decode_image_raw(data, where)
    except CommandError:
        raise RequestError(f"{where} is not a readable image (expected JPEG, PNG, TIFF, BMP or WebP)") from None
    check_image_size(image, where, limits)
    return to_float(image)


def check_image_size(image: np.ndarray, where: str, limits: Limits) -> None:
    height, width = image.shape[:2]
    if height * width > limits.max_pixels:
        raise RequestError(f"{where} is larger than this server's limit of {limits.max_pixels / 1e6:g} megapixels", 413)
    if min(height, width) < MIN_SIDE:
        raise RequestError(
            f"{where}: image of {width}x{height} is too small: both sides must be at least {MIN_SIDE} pixels"
        )


def float_image(value: Any, where: str, rank: int, limits: Limits) -> np.ndarray:
    """A float32 array of ``rank`` dimensions, the last 3, every value in [0, 1]."""
    shape_text = "[H, W, 3]" if rank == 3 else "[batch, H, W, 3]"
    try:
        array = np.asarray(value)
    except ValueError:
        array = None
    if array is None or array.dtype.kind not in "iuf" or array.ndim != rank or array.shape[-1] != 3:
        got = f"shape {list(array.shape)}" if array is not None and array.dtype.kind in "iuf" else "something else"
        raise RequestError(f"{where} must be a {shape_text} array of numbers, got {got}")
    bad = ~((array >= 0) & (array <= 1))
    if bad.any():
        found = array[bad].flat[0]
        raise RequestError(f"{where}: values must be in [0, 1], found {'NaN' if np.isnan(found) else repr(float(found))}")
    images = array.astype(np.float32)
    for i, image in enumerate(images if rank == 4 else [images]):
        check_image_size(image, f"{where}[{i}]" if rank == 4 else where, limits)
    return images


def scene(images: dict[str, np.ndarray], where: str) -> list[np.ndarray]:
    """The exposures of one scene (named in messages by their keys), checked: two or more, one size."""
    if len(images) < 2:
        raise RequestError(f"{where}: need at least two exposures to fuse, got {len(images)}")
    sizes = {name: image.shape[:2] for name, image in images.items()}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{name} {w}x{h}" for name, (h, w) in sizes.items())
        raise RequestError(f"{where}: exposures differ in size: {listed}")
    return list(images.values())


def check_inputs(names: set[str], signature: str, where: str) -> None:
    expected = set(signature_inputs(signature))
    allowed = expected | ({EXPOSURES_INPUT} if signature == BYTES_SIGNATURE else set())
    unknown = sorted(names - allowed)
    takes = " and ".join(sorted(expected)) + (f", or {EXPOSURES_INPUT}" if signature == BYTES_SIGNATURE else "")
    if unknown:
        raise RequestError(f'{where}: unknown input "{unknown[0]}" ({signature} takes {takes})')
    if signature == BYTES_SIGNATURE and EXPOSURES_INPUT in names:
        if names != {EXPOSURES_INPUT}:
            raise RequestError(f"{where}: give either {EXPOSURES_INPUT} or over_bytes and under_bytes, not both")
        return
    missing = sorted(expected - names)
    if missing:
        raise RequestError(f'{where}: missing input "{missing[0]}" ({signature} takes {takes})')


def exposures_list(value: Any, where: str, limits: Limits) -> dict[str, np.ndarray]:
    if not isinstance(value, list):
        raise RequestError(f'{where} must be a list of {{"b64": ...}} images')
    return {f"{where}[{i}]": decode_exposure(decode_b64(v, f"{where}[{i}]"), f"{where}[{i}]", limits) for i, v in enumerate(value)}


def parse_instance(instance: Any, signature: str, where: str, limits: Limits) -> list[np.ndarray]:
    """The exposures of one row-format instance."""
    if not isinstance(instance, dict):
        raise RequestError(f"{where} must be an object of named inputs")
    check_inputs(set(instance), signature, where)
    if signature == FLOAT_SIGNATURE:
        images = {f"{where}.{name}": float_image(instance[name], f"{where}.{name}", 3, limits) for name in ("over", "under")}
    elif EXPOSURES_INPUT in instance:
        images = exposures_list(instance[EXPOSURES_INPUT], f"{where}.{EXPOSURES_INPUT}", limits)
    else:
        images = {
            f"{where}.{name}": decode_exposure(decode_b64(instance[name], f"{where}.{name}"), f"{where}.{name}", limits)
            for name in ("over_bytes", "under_bytes")
        }
    return scene(images, where)


def parse_columns(inputs: Any, signature: str, limits: Limits) -> list[list[np.ndarray]]:
    """The exposures of each batch entry of a columnar request."""
    if not isinstance(inputs, dict):
        raise RequestError('"inputs" must be an object of named inputs')
    check_inputs(set(inputs), signature, "inputs")
    if signature == FLOAT_SIGNATURE:
        columns = {name: list(float_image(inputs[name], f"inputs.{name}", 4, limits)) for name in ("over", "under")}
    elif EXPOSURES_INPUT in inputs:
        scenes = inputs[EXPOSURES_INPUT]
        if not isinstance(scenes, list) or not scenes:
            raise RequestError(f'inputs.{EXPOSURES_INPUT} must be a non-empty list of lists of {{"b64": ...}} images')
        return [
            scene(exposures_list(images, f"inputs.{EXPOSURES_INPUT}[{i}]", limits), f"inputs.{EXPOSURES_INPUT}[{i}]")
            for i, images in enumerate(scenes)
        ]
    else:
        columns = {}
        for name in ("over_bytes", "under_bytes"):
            values = inputs[name]
            if not isinstance(values, list) or not values:
                raise RequestError(f'inputs.{name} must be a non-empty list of {{"b64": ...}} images')
            columns[name] = [
                decode_exposure(decode_b64(v, f"inputs.{name}[{i}]"), f"inputs.{name}[{i}]", limits) for i, v in enumerate(values)
            ]
    first, second = columns.values()
    if len(first) != len(second):
        raise RequestError(f"inputs: {' and '.join(columns)} have different batch sizes ({len(first)} and {len(second)})")
    names = list(columns)
    return [
        scene({f"inputs.{names[0]}[{i}]": a, f"inputs.{names[1]}[{i}]": b}, f"inputs[{i}]")
        for i, (a, b) in enumerate(zip(first, second))
    ]


def parse_predict(body: bytes, limits: Limits) -> Prediction:
    """Parse and check a ``:predict`` body; RequestError (400/413) says what is wrong."""
    try:
        return _parse_predict(body, limits)
    except RecursionError:  # arrays nested deeper than any image (the JSON itself parsed)
        raise RequestError("request body is nested too deeply for [H, W, 3] images") from None


def _parse_predict(body: bytes, limits: Limits) -> Prediction:
    request = parse_json(body)
    signature = request.get("signature_name", FLOAT_SIGNATURE)
    if signature not in SIGNATURES:
        raise RequestError(
            f"signature_name {json.dumps(signature)} not found (this model has {FLOAT_SIGNATURE} and {BYTES_SIGNATURE})"
        )
    unknown = sorted(set(request) - {"signature_name", "instances", "inputs"})
    if unknown:
        raise RequestError(f'unknown request field "{unknown[0]}" (expected signature_name and instances or inputs)')
    if ("instances" in request) == ("inputs" in request):
        raise RequestError('request must have either "instances" (row format) or "inputs" (columnar format), not both or neither')
    if "inputs" in request:
        return Prediction(signature, True, parse_columns(request["inputs"], signature, limits))
    instances = request["instances"]
    if not isinstance(instances, list) or not instances:
        raise RequestError('"instances" must be a non-empty list')
    scenes = [parse_instance(instance, signature, f"instances[{i}]", limits) for i, instance in enumerate(instances)]
    return Prediction(signature, False, scenes)


def encode_png(image: np.ndarray) -> bytes:
    """8-bit RGB PNG of a float [0, 1] image (what the SavedModel's fuse_images returns)."""
    import cv2

    from mefgan_tf.images import to_uint8

    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(to_uint8(image)[..., ::-1]))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return encoded.tobytes()


def answer(fuser, prediction: Prediction, stop: threading.Event | None = None) -> bytes:
    """The JSON answer to ``prediction``: every scene fused with ``fuser`` (a ``fusion.Fuser``);
    ``stop`` set cancels the work at its next step (``fusion.FusionCancelled``)."""
    results: list[Any] = []
    for exposures in prediction.scenes:
        if prediction.signature == FLOAT_SIGNATURE:  # used as named, like the SavedModel
            results.append(fuser.pair(exposures[0], exposures[1], fuser.silent_progress(stop)).tolist())
        else:
            results.append({"b64": base64.b64encode(encode_png(fuser(exposures, stop=stop))).decode("ascii")})
    key = "outputs" if prediction.columnar else "predictions"
    return json.dumps({key: results}, separators=(",", ":")).encode()


def status_body(version: str) -> dict:
    return {"model_version_status": [{"version": version, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}


def tensor_info(dtype: str, shape: tuple[int, ...], name: str) -> dict:
    """A TensorInfo as TensorFlow Serving writes it in JSON (default fields included)."""
    dims = [{"size": str(size), "name": ""} for size in shape]
    return {"dtype": DATA_TYPES[dtype], "tensor_shape": {"dim": dims, "unknown_rank": False}, "name": name}


def metadata_body(name: str, version: str) -> dict:
    """GetModelMetadata's answer: the SavedModel's signature_def map (``export.SIGNATURES``)."""
    signature_defs = {}
    for signature, (inputs_spec, outputs_spec) in SIGNATURES.items():
        inputs = {k: tensor_info(*v, f"{signature}_{k}:0") for k, v in inputs_spec.items()}
        outputs = {k: tensor_info(*v, OUTPUT_TENSORS[signature]) for k, v in outputs_spec.items()}
        signature_defs[signature] = {"inputs": inputs, "outputs": outputs, "method_name": "tensorflow/serving/predict", "defaults": {}}
    return {
        "model_spec": {"name": name, "signature_name": "", "version": version},
        "metadata": {"signature_def": {"signature_def": signature_defs}},
    }


