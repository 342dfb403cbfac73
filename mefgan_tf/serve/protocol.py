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

Memory is bounded before anything large is made: images are accepted in an allow-list of formats
(``IMAGE_FORMATS``) whose header gives their size, so pixels per image and per request are checked
before decoding; what parsing and decoding will hold (``json_cost``, ``pixel_cost``) is reserved
with the caller's ``reserve`` first (``serve.app``'s memory budget).
"""
# No `from __future__ import annotations`: FastAPI reads the handlers' annotations at run time.
import base64
import binascii
import io
import json
import math
import re
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mefgan_tf.errors import QUOTE_LIMIT, CommandError
from mefgan_tf.export import BYTES_SIGNATURE, FLOAT_SIGNATURE, SIGNATURES

MODEL_NAME = "mefgan"
DEFAULT_MAX_BODY_MB = 64.0
DEFAULT_MAX_MEGAPIXELS = 50.0  # per decoded image: bounds memory against small files of huge images
DEFAULT_MAX_REQUEST_MEGAPIXELS = 100.0  # all images of one request together
DEFAULT_TIMEOUT_S = 600.0
DEFAULT_BODY_TIMEOUT_S = 60.0  # to receive a request's body: a stalled client does not hold on for ever
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
    max_request_pixels: int = int(DEFAULT_MAX_REQUEST_MEGAPIXELS * 1e6)
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    memory_bytes: int | None = None  # the memory budget of all requests together (None: ``serve.app``'s default)


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
    """The bytes of a ``{"b64": ...}`` value; line breaks (as `base64` writes every 76 characters) are
    ignored, anything else not base64 is a 400 saying what."""
    if not (isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str)):
        raise RequestError(f'{where} must be {{"b64": "<base64 JPEG/PNG>"}}')
    text = value["b64"]
    if "\n" in text or "\r" in text:
        text = text.replace("\r", "").replace("\n", "")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(f"{where} is not valid base64 ({base64_problem(text)})") from None


def base64_problem(text: str) -> str:
    """Why ``text`` is not standard base64, in a few words."""
    bad = re.search(r"[^A-Za-z0-9+/=]", text)
    if bad:
        hint = "; '-' and '_' are URL-safe base64: use the standard alphabet" if bad.group() in "-_" else ""
        return f"character {bad.group()!r} at position {bad.start()} is not in the base64 alphabet{hint}"
    if len(text) % 4:
        return f"its length, {len(text)}, is not a multiple of 4: cut short, or padding '=' missing"
    return "'=' padding in the middle"


# The formats a request's images may have: (magic bytes test, PIL's name for it). Each tells its size
# in its header; others (Radiance HDR, OpenEXR, JPEG 2000, GIF, ...) are refused before decoding.
IMAGE_FORMATS = {
    "JPEG": lambda d: d[:3] == b"\xff\xd8\xff",
    "PNG": lambda d: d[:8] == b"\x89PNG\r\n\x1a\n",
    "TIFF": lambda d: d[:4] in (b"II*\x00", b"MM\x00*"),
    "BMP": lambda d: d[:2] == b"BM",
    "WEBP": lambda d: d[:4] == b"RIFF" and d[8:12] == b"WEBP",
    "PPM": lambda d: re.match(rb"P[1-6]\s", d[:3]) is not None,
}
FORMAT_NAMES = "JPEG, PNG, TIFF, BMP, WebP or PNM"


@dataclass
class Encoded:
    """An image still encoded, with its size from its header."""

    data: bytes
    where: str
    shape: tuple[int, int]  # (height, width)


def image_header(data: bytes, where: str) -> tuple[int, int]:
    """(height, width) from the header of an image of an accepted format, nothing decoded; 400 for
    another format or a header PIL cannot read."""
    from PIL import Image

    kind = next((name for name, test in IMAGE_FORMATS.items() if test(data)), None)
    if kind is None:
        raise RequestError(f"{where} is not a readable image (expected {FORMAT_NAMES})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PIL's warnings on a client's file (bombs, corrupt EXIF) are not the server's
        try:
            with Image.open(io.BytesIO(data), formats=[kind]) as image:
                width, height = image.size
        except Image.DecompressionBombError:
            return 2**31, 2**31
        except Exception:  # noqa: BLE001 - any header PIL cannot read is the client's
            raise RequestError(f"{where} is not a readable image (expected {FORMAT_NAMES})") from None
    return height, width


def encoded_exposure(data: bytes, where: str, limits: Limits) -> Encoded:
    """An encoded image whose header passed the per-image checks (decoded later, ``decode_exposure``)."""
    shape = image_header(data, where)
    check_image_size(shape, where, limits)
    return Encoded(data, where, shape)


def decode_exposure(encoded: Encoded, limits: Limits) -> np.ndarray:
    """RGB float32 [0, 1] of an encoded image (8 or 16 bits, EXIF orientation applied)."""
    from mefgan_tf.images import decode_image_raw, to_float

    try:
        image = decode_image_raw(encoded.data, encoded.where)
    except CommandError:
        raise RequestError(f"{encoded.where} is not a readable image (expected {FORMAT_NAMES})") from None
    check_image_size(image.shape[:2], encoded.where, limits)
    return to_float(image)


def check_image_size(shape: tuple[int, ...], where: str, limits: Limits) -> None:
    height, width = shape[:2]
    if height * width > limits.max_pixels:
        raise RequestError(f"{where} is larger than this server's limit of {limits.max_pixels / 1e6:g} megapixels", 413)
    if min(height, width) < MIN_SIDE:
        raise RequestError(
            f"{where}: image of {width}x{height} is too small: both sides must be at least {MIN_SIDE} pixels"
        )


BOOLEAN_IN_ARRAY = re.compile(rb"[\[,]\s*(?:true|false)\b")


def holds_boolean(value: Any) -> bool:
    """True if the nested lists ``value`` hold a JSON true or false anywhere."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, bool):
            return True
    return False


def float_image(value: Any, where: str, rank: int, limits: Limits, booleans: bool = False) -> np.ndarray:
    """A float32 array of ``rank`` dimensions, the last 3, every value a number in [0, 1] (``booleans``:
    the body holds a JSON true or false in some array, so look for them: numpy would make them 1 and 0)."""
    shape_text = "[H, W, 3]" if rank == 3 else "[batch, H, W, 3]"
    if booleans and holds_boolean(value):
        raise RequestError(f"{where} must be a {shape_text} array of numbers, got true or false in it")
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
        check_image_size(image.shape, f"{where}[{i}]" if rank == 4 else where, limits)
    return images


Images = dict[str, "np.ndarray | Encoded"]  # a scene's exposures by the name that messages give them


def scene(images: Images, where: str) -> Images:
    """The exposures of one scene (named in messages by their keys), checked: two or more, one size."""
    if len(images) < 2:
        raise RequestError(f"{where}: need at least two exposures to fuse, got {len(images)}")
    sizes = {name: image.shape[:2] for name, image in images.items()}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{name} {w}x{h}" for name, (h, w) in sizes.items())
        raise RequestError(f"{where}: exposures differ in size: {listed}")
    return images


def check_inputs(names: set[str], signature: str, where: str) -> None:
    expected = set(signature_inputs(signature))
    allowed = expected | ({EXPOSURES_INPUT} if signature == BYTES_SIGNATURE else set())
    unknown = sorted(names - allowed)
    takes = " and ".join(sorted(expected)) + (f", or {EXPOSURES_INPUT}" if signature == BYTES_SIGNATURE else "")
    if unknown:
        raise RequestError(f'{where}: unknown input {json_quoted(unknown[0])} ({signature} takes {takes})')
    if signature == BYTES_SIGNATURE and EXPOSURES_INPUT in names:
        if names != {EXPOSURES_INPUT}:
            raise RequestError(f"{where}: give either {EXPOSURES_INPUT} or over_bytes and under_bytes, not both")
        return
    missing = sorted(expected - names)
    if missing:
        raise RequestError(f'{where}: missing input "{missing[0]}" ({signature} takes {takes})')


def exposures_list(value: Any, where: str, limits: Limits) -> Images:
    if not isinstance(value, list):
        raise RequestError(f'{where} must be a list of {{"b64": ...}} images')
    return {f"{where}[{i}]": encoded_exposure(decode_b64(v, f"{where}[{i}]"), f"{where}[{i}]", limits) for i, v in enumerate(value)}


def parse_instance(instance: Any, signature: str, where: str, limits: Limits, booleans: bool) -> Images:
    """The exposures of one row-format instance."""
    if not isinstance(instance, dict):
        raise RequestError(f"{where} must be an object of named inputs")
    check_inputs(set(instance), signature, where)
    if signature == FLOAT_SIGNATURE:
        images = {f"{where}.{name}": float_image(instance[name], f"{where}.{name}", 3, limits, booleans) for name in ("over", "under")}
    elif EXPOSURES_INPUT in instance:
        images = exposures_list(instance[EXPOSURES_INPUT], f"{where}.{EXPOSURES_INPUT}", limits)
    else:
        images = {
            f"{where}.{name}": encoded_exposure(decode_b64(instance[name], f"{where}.{name}"), f"{where}.{name}", limits)
            for name in ("over_bytes", "under_bytes")
        }
    return scene(images, where)


def parse_columns(inputs: Any, signature: str, limits: Limits, booleans: bool) -> list[tuple[str, Images]]:
    """The exposures of each batch entry of a columnar request, with the entry's name."""
    if not isinstance(inputs, dict):
        raise RequestError('"inputs" must be an object of named inputs')
    check_inputs(set(inputs), signature, "inputs")
    if signature == FLOAT_SIGNATURE:
        columns = {name: list(float_image(inputs[name], f"inputs.{name}", 4, limits, booleans)) for name in ("over", "under")}
    elif EXPOSURES_INPUT in inputs:
        scenes = inputs[EXPOSURES_INPUT]
        if not isinstance(scenes, list) or not scenes:
            raise RequestError(f'inputs.{EXPOSURES_INPUT} must be a non-empty list of lists of {{"b64": ...}} images')
        names = [f"inputs.{EXPOSURES_INPUT}[{i}]" for i in range(len(scenes))]
        return [(name, scene(exposures_list(images, name, limits), name)) for name, images in zip(names, scenes)]
    else:
        columns = {}
        for name in ("over_bytes", "under_bytes"):
            values = inputs[name]
            if not isinstance(values, list) or not values:
                raise RequestError(f'inputs.{name} must be a non-empty list of {{"b64": ...}} images')
            columns[name] = [
                encoded_exposure(decode_b64(v, f"inputs.{name}[{i}]"), f"inputs.{name}[{i}]", limits) for i, v in enumerate(values)
            ]
    first, second = columns.values()
    if len(first) != len(second):
        raise RequestError(f"inputs: {' and '.join(columns)} have different batch sizes ({len(first)} and {len(second)})")
    names = list(columns)
    return [
        (f"inputs[{i}]", scene({f"inputs.{names[0]}[{i}]": a, f"inputs.{names[1]}[{i}]": b}, f"inputs[{i}]"))
        for i, (a, b) in enumerate(zip(first, second))
    ]


# Bytes that parsing a body holds at most: the body, its text, its strings and their decoded bytes,
# and per JSON separator one Python object with numpy's copies of it (a float array's "0.5,").
BODY_COPIES, BYTES_PER_SEPARATOR = 5, 64
# Bytes per pixel of a request's images until it is answered: decoding (16-bit, flipped, float32)
# for fuse_images; the float32 image and its JSON answer (Python floats, then text) for serving_default.
PIXEL_BYTES = {BYTES_SIGNATURE: 48, FLOAT_SIGNATURE: 176}


def json_cost(body: bytes) -> int:
    """Bytes that parsing ``body`` may hold at once (``BODY_COPIES``, ``BYTES_PER_SEPARATOR``)."""
    separators = body.count(b",") + body.count(b"[") + body.count(b"{") + body.count(b":")
    return BODY_COPIES * len(body) + BYTES_PER_SEPARATOR * separators


def no_budget(total: int, what: str) -> None:
    """A ``reserve`` that accepts everything."""


def parse_predict(body: bytes, limits: Limits, reserve: Callable[[int, str], None] = no_budget) -> Prediction:
    """Parse and check a ``:predict`` body; RequestError (400/413, or what ``reserve`` raises) says
    what is wrong. ``reserve(total, what)`` is told the bytes this request will hold in all before
    they are made: what parsing the JSON holds, then with the images' pixels, before decoding them."""
    reserve(json_cost(body), "parsing this request")
    try:
        signature, columnar, scenes = _parse_predict(body, limits)
    except RecursionError:  # arrays nested deeper than any image (the JSON itself parsed)
        raise RequestError("request body is nested too deeply for [H, W, 3] images") from None
    pixels = sum(math.prod(image.shape[:2]) for _, images in scenes for image in images.values())
    if pixels > limits.max_request_pixels:
        raise RequestError(f"request holds {pixels / 1e6:.3g} megapixels in all, more than this server's limit of "
                           f"{limits.max_request_pixels / 1e6:g} per request (mefgan serve --max-request-megapixels)", 413)
    reserve(json_cost(body) + pixels * PIXEL_BYTES[signature], "this request with its images")
    decoded = []
    for where, images in scenes:
        arrays = {name: decode_exposure(v, limits) if isinstance(v, Encoded) else v for name, v in images.items()}
        decoded.append(list(scene(arrays, where).values()))  # again: a JPEG's orientation may turn it
    return Prediction(signature, columnar, decoded)


def _parse_predict(body: bytes, limits: Limits) -> tuple[str, bool, list[tuple[str, Images]]]:
    request = parse_json(body)
    signature = request.get("signature_name", FLOAT_SIGNATURE)
    if not isinstance(signature, str):
        raise RequestError(f"signature_name must be a string, got {json_kind(signature)}")
    if signature not in SIGNATURES:
        raise RequestError(
            f"signature_name {json_quoted(signature)} not found (this model has {FLOAT_SIGNATURE} and {BYTES_SIGNATURE})"
        )
    unknown = sorted(set(request) - {"signature_name", "instances", "inputs"})
    if unknown:
        raise RequestError(f"unknown request field {json_quoted(unknown[0])} (expected signature_name and instances or inputs)")
    if ("instances" in request) == ("inputs" in request):
        raise RequestError('request must have either "instances" (row format) or "inputs" (columnar format), not both or neither')
    booleans = BOOLEAN_IN_ARRAY.search(body) is not None
    if "inputs" in request:
        return signature, True, parse_columns(request["inputs"], signature, limits, booleans)
    instances = request["instances"]
    if not isinstance(instances, list) or not instances:
        raise RequestError('"instances" must be a non-empty list')
    names = [f"instances[{i}]" for i in range(len(instances))]
    return signature, False, [(n, parse_instance(v, signature, n, limits, booleans)) for n, v in zip(names, instances)]


def json_quoted(value: Any) -> str:
    """``value`` as JSON, cut to ``QUOTE_LIMIT`` characters (a message stays one short line)."""
    text = json.dumps(value)
    return text if len(text) <= QUOTE_LIMIT else text[: QUOTE_LIMIT - 3] + "..."


def json_kind(value: Any) -> str:
    """What a JSON value is, in words (for messages)."""
    kinds = {dict: "an object", list: "a list", bool: "true or false", type(None): "null", int: "a number", float: "a number"}
    return kinds.get(type(value), "a string")


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


