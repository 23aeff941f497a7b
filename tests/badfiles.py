"""Small good and bad input files for the error tests (not a test module itself)."""
from __future__ import annotations

import gzip
import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

N_PIXELS = 784
HEADER = "label," + ",".join(f"pixel{i}" for i in range(N_PIXELS))


def digits(n: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random digits: (images (n, 784) uint8, labels (n,) uint8)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, N_PIXELS), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


def csv_rows(n: int = 5, seed: int = 0) -> list[list[str]]:
    """Rows of cells (label first) as strings, to be damaged by a test."""
    images, labels = digits(n, seed)
    return [[str(label), *map(str, row)] for label, row in zip(labels, images)]


def csv_text(rows, header: str = HEADER, newline: str = "\n", final_newline: bool = True) -> bytes:
    lines = [header, *(",".join(r) for r in rows)]
    return (newline.join(lines) + (newline if final_newline else "")).encode()


def with_cell(row: int, col: int, value: str, n: int = 5) -> bytes:
    """A good CSV of ``n`` rows whose data row ``row`` (0-based) has ``value`` in column ``col``."""
    rows = csv_rows(n)
    rows[row][col] = value
    return csv_text(rows)


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` (uint8) in MNIST's IDX layout."""
    array = np.asarray(array, np.uint8)
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.tobytes()


def write_idx_folder(folder: Path, n_train: int = 20, n_test: int = 10, gz: bool = False,
                     replace: dict | None = None) -> Path:
    """A folder of the four MNIST IDX files; ``replace`` maps a file name to other bytes (None: no file)."""
    folder.mkdir(parents=True, exist_ok=True)
    train_images, train_labels = digits(n_train, 1)
    test_images, test_labels = digits(n_test, 2)
    files = {
        "train-images-idx3-ubyte": idx_bytes(train_images.reshape(-1, 28, 28)),
        "train-labels-idx1-ubyte": idx_bytes(train_labels),
        "t10k-images-idx3-ubyte": idx_bytes(test_images.reshape(-1, 28, 28)),
        "t10k-labels-idx1-ubyte": idx_bytes(test_labels),
    }
    for name, content in {**files, **(replace or {})}.items():
        if content is None:
            continue  # a missing file
        (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(content) if gz else content)
    return folder


# --------------------------------------------------------------------------- #
# Every bad file the tests cover: name -> (content, the message it must give, as a regex)
# --------------------------------------------------------------------------- #
BAD_CSV = {
    "ragged row": (csv_text([*csv_rows(2), csv_rows(1)[0][:-1]]), r"line 4: has 784 values, expected 785"),
    "long row": (csv_text([*csv_rows(2), csv_rows(1)[0] + ["0"]]), r"line 4: has 786 values, expected 785"),
    "text cell": (with_cell(1, 5, "abc"), r"line 3, column 6 \(pixel4\): 'abc' is not a whole number"),
    "nan cell": (with_cell(0, 2, "NaN"), r"line 2, column 3 \(pixel1\): 'NaN' is not a whole number"),
    "empty cell": (with_cell(2, 784, ""), r"line 4, column 785 \(pixel783\): '' is not a whole number"),
    "fraction": (with_cell(0, 1, "0.5"), r"line 2, column 2 \(pixel0\): '0.5' is not a whole number"),
    "label 10": (with_cell(3, 0, "10"), r"line 5, column 1 \(label\): label 10 is outside 0-9"),
    "label -1": (with_cell(3, 0, "-1"), r"line 5, column 1 \(label\): label -1 is outside 0-9"),
    "pixel 256": (with_cell(4, 9, "256"), r"line 6, column 10 \(pixel8\): pixel value 256 is outside 0-255"),
    "pixel 1000": (with_cell(4, 9, "1000"), r"pixel value 1000 is outside 0-255"),
    "pixel -3": (with_cell(1, 9, "-3"), r"line 3, column 10 \(pixel8\): pixel value -3 is outside 0-255"),
    "no label column": (csv_text(csv_rows(2), header=HEADER.replace("label", "digit")), r"line 1: no 'label' column"),
    "no header": (csv_text(csv_rows(2)[1:], header=",".join(csv_rows(1)[0])), r"line 1: no header line"),
    "783 pixels": (csv_text([r[:-1] for r in csv_rows(2)], header=HEADER.rsplit(",", 1)[0]),
                   r"line 1: header has 783 pixel columns, expected 784"),
    "785 pixels": (csv_text([r + ["0"] for r in csv_rows(2)], header=HEADER + ",pixel784"),
                   r"line 1: header has 785 pixel columns, expected 784"),
    "empty file": (b"", r"is empty"),
    "blank file": (b"\n\n  \n", r"is empty"),
    "header only": (HEADER.encode() + b"\n", r"has a header but no rows of digits"),
    "header and blank lines": (HEADER.encode() + b"\n\n\n", r"has a header but no rows of digits"),
    "binary header": (bytes(range(128, 256)) * 4, r"line 1, byte 0: not UTF-8 text"),
    "control characters": (bytes(range(256)) * 4, r"line 1, character 1: control character '\\x00'"),
    "binary body": (csv_text(csv_rows(2)) + b"\x00\xff\xfe\x80garbage\n", r"line 4, byte \d+: not UTF-8 text"),
    "damaged gzip": (gzip.compress(csv_text(csv_rows(2)))[:-30], r"damaged gzip data"),
}

GOOD_IMAGES = idx_bytes(digits(20, 1)[0].reshape(-1, 28, 28))
BAD_IDX = {
    "truncated images": ({"train-images-idx3-ubyte": GOOD_IMAGES[:-100]},
                         r"train-images-idx3-ubyte: byte 15596: file ends after 15580 of the 15680 data bytes"),
    "extra bytes": ({"train-images-idx3-ubyte": GOOD_IMAGES + b"\0"}, r"byte 15696: more data than its header"),
    "wrong magic": ({"t10k-labels-idx1-ubyte": b"\x00\x00\x0d\x01" + bytes(14)},
                    r"t10k-labels-idx1-ubyte: byte 0: magic number 0x00000d01 is not an IDX file"),
    "text file": ({"t10k-labels-idx1-ubyte": b"hello, world"}, r"magic number 0x68656c6c"),
    "header cut": ({"train-labels-idx1-ubyte": b"\x00\x00\x08\x01\x00"}, r"byte 5: file ends inside the IDX header"),
    "tiny file": ({"train-labels-idx1-ubyte": b"\x00"}, r"1 bytes, too short for an IDX header"),
    "empty file": ({"train-labels-idx1-ubyte": b""}, r"0 bytes, too short"),
    "counts differ": ({"train-labels-idx1-ubyte": idx_bytes(digits(19, 1)[1])},
                      r"train-images-idx3-ubyte: holds 20 images but train-labels-idx1-ubyte holds 19 labels"),
    "missing file": ({"t10k-images-idx3-ubyte": None}, r"no t10k-images-idx3-ubyte file \(plain or .gz\) in this folder"),
    "label 12": ({"t10k-labels-idx1-ubyte": idx_bytes(np.full(10, 12))}, r"item 0 \(byte 8\): label 12 is not a digit 0-9"),
    "not 28x28": ({"train-images-idx3-ubyte": idx_bytes(np.zeros((20, 27, 29)))}, r"shape \(27, 29\), expected 28x28"),
    "huge header": ({"train-images-idx3-ubyte": b"\x00\x00\x08\x03" + b"\xff" * 12},
                    r"byte 4: header says \(4294967295, 4294967295, 4294967295\).*refusing"),
}


# --------------------------------------------------------------------------- #
# Model files and images
# --------------------------------------------------------------------------- #
def model_bytes(sizes=(12, 5, 3), meta_change=None) -> bytes:
    """A saved MLP as the bytes of its .npz; ``meta_change(meta)`` may damage its meta record."""
    from nnscratch import Classifier, mlp
    from nnscratch.files.modelfile import PREPROCESSING

    model = Classifier(mlp(list(sizes), seed=0))
    arrays = {f"param/{name}": p for name, p in model.network.state_dict().items()}
    meta = {"format": "nnscratch-model", "version": 2, "network": model.network.describe(),
            "preprocessing": PREPROCESSING, "classes": [str(i) for i in range(sizes[-1])]}
    if meta_change:
        meta_change(meta)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A PNG of a few dozen bytes whose header declares ``width`` x ``height`` pixels (a decompression bomb)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grey
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(64)))
            + chunk(b"IEND", b""))


def png(picture: Image.Image) -> bytes:
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


def drawn_digit_png() -> bytes:
    """A '1' drawn in dark ink on white, as on the web page."""
    canvas = Image.new("L", (140, 140), 255)
    ImageDraw.Draw(canvas).line([(75, 20), (68, 120)], fill=0, width=10)
    return png(canvas)


GOOD_MODEL_784 = model_bytes((784, 16, 10))
GOOD_PNG = drawn_digit_png()
_V99 = model_bytes((784, 16, 10), lambda meta: meta.update(version=99))
# name -> (content of <name>.npz, the message after "<path>: ", as a regex)
BAD_MODELS = {
    "truncated": (GOOD_MODEL_784[:len(GOOD_MODEL_784) // 2], r"not a readable model file \(BadZipFile"),
    "random": (np.random.default_rng(0).bytes(3000), r"not an nnscratch model file: is not an \.npz archive"),
    "zero": (b"", r"not an nnscratch model file: is empty"),
    "version99": (_V99, r"field 'version': format version 99 is not supported \(this nnscratch reads versions 1, 2\)"),
    "not-a-model": (npz_bytes(weights=np.zeros((3, 3))), r"not an nnscratch model file \(no 'meta' record\)"),
    "pickled": (npz_bytes(meta=np.array([{"format": "nnscratch-model"}], dtype=object)),
                r"not a readable model file: it holds pickled Python objects, which nnscratch never loads"),
    "nan-weights": (npz_bytes(**{k: (np.full_like(v, np.nan) if k == "param/1.W" else v)
                                 for k, v in np.load(io.BytesIO(GOOD_MODEL_784)).items()}),
                    r"array 'param/1.W': holds NaN or infinite values"),
    "wrong-shape": (npz_bytes(**{k: (v[:10] if k == "param/1.W" else v)
                                 for k, v in np.load(io.BytesIO(GOOD_MODEL_784)).items()}),
                    r"array 'param/1.W': expected shape \(784, 16\), found shape \(10, 16\)"),
    "unknown-layer": (model_bytes((784, 16, 10), lambda meta: meta["network"]["layers"][2].update(type="Swish")),
                      r"field 'network': damaged architecture \(ValueError: unknown layer type 'Swish'\)"),
    "layers-do-not-fit": (model_bytes((784, 16, 10), lambda meta: meta["network"]["layers"][3].update(n_in=15)),
                          r"field 'network': damaged architecture \(ValueError: Dense\(15, 10\) cannot take"),
}
# Models that load but do not fit the data: name -> (content, message)
MISFIT_MODELS = {
    "100-inputs": (model_bytes((100, 16, 10)), r"this network takes 100 values per digit, not the 784 of"),
}
# name -> (content, or None for no file, the message after "<path>: ")
BAD_IMAGES = {
    "garbage.png": (np.random.default_rng(1).bytes(500), r"not an image Pillow can read"),
    "text.png": (b"a digit, honestly", r"not an image Pillow can read"),
    "zero.png": (b"", r"empty file \(0 bytes\), not an image"),
    "blank white.png": (png(Image.new("L", (64, 64), 255)), r"no ink found \(the image looks blank"),
    "blank black.png": (png(Image.new("L", (64, 64), 0)), r"no ink found"),
    "bomb 30000x30000.png": (png_declaring(30000, 30000), r"image too large to decode safely \(limit 50,000,000"),
    "bomb 8000x8000.png": (png_declaring(8000, 8000), r"8000x8000 pixels is too large \(limit 50,000,000"),
    "truncated.png": (GOOD_PNG[:len(GOOD_PNG) // 2], r"damaged or truncated image"),
    "missing.png": (None, r"no such file"),
}
