"""``nnscratch download``: MNIST or Fashion-MNIST from their public mirrors, checked.

Each dataset is four gzipped IDX files (training and test images and labels),
which ``nnscratch train --data DIR`` reads as they are. Every file is fetched
into a temporary file beside its target, its SHA-256 sum compared with the
published one, and only then renamed into place: a damaged, partial or
different file is refused (trying the next mirror), and nothing half-written
is ever left under the file's name. Files already there with the published
sum are kept; files there with another sum are never overwritten.

The standard library's ``urllib`` is enough for four plain HTTP(S) GETs.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import DataError

CHUNK = 1 << 20  # read and hash 1 MB at a time
TIMEOUT = 60  # seconds without an answer before a mirror is given up

# name -> mirrors (tried in turn) and files: file name -> (published SHA-256, size in bytes).
# The sums are those the datasets' publishers give, as torchvision and tensorflow-datasets check them.
DATASETS = {
    "mnist": {
        "title": "MNIST",
        "mirrors": ["https://ossci-datasets.s3.amazonaws.com/mnist/",
                    "https://storage.googleapis.com/cvdf-datasets/mnist/",
                    "http://yann.lecun.com/exdb/mnist/"],
        "files": {
            "train-images-idx3-ubyte.gz": ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
            "train-labels-idx1-ubyte.gz": ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
            "t10k-images-idx3-ubyte.gz": ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
            "t10k-labels-idx1-ubyte.gz": ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
        },
    },
    "fashion-mnist": {
        "title": "Fashion-MNIST",
        "mirrors": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                    "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/"],
        "files": {  # name: (SHA-256, bytes)
            "train-images-idx3-ubyte.gz":
                ("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880),
            "train-labels-idx1-ubyte.gz": ("a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515),
            "t10k-images-idx3-ubyte.gz": ("346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102),
            "t10k-labels-idx1-ubyte.gz": ("67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148),
        },
    },
}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, into: Path, size: int | None) -> tuple[str, int]:
    """Write the body at ``url`` into ``into``; returns its SHA-256 and length.

    Stops reading one byte past ``size``: a mirror sending more than the
    published file is wrong, and must not fill the disk.
    """
    digest, length = hashlib.sha256(), 0
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response, open(into, "wb") as f:
        while block := response.read(CHUNK if size is None else min(CHUNK, size + 1 - length)):
            digest.update(block)
            f.write(block)
            length += len(block)
            if size is not None and length > size:
                break
        f.flush()
        os.fsync(f.fileno())
    return digest.hexdigest(), length


def why_not(url: str, exc: Exception) -> str:
    """What went wrong with one mirror, in a few words."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"{url}: HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"{url}: {exc.reason}"
    if isinstance(exc, http.client.IncompleteRead):
        return f"{url}: the connection closed after {len(exc.partial)} bytes (a partial file)"
    return f"{url}: {type(exc).__name__}: {exc}"


def download_file(name: str, sha256: str, size: int | None, mirrors, folder: Path, log=print) -> None:
    """Fetch ``name`` from the first mirror that gives the published file, into ``folder``."""
    target = folder / name
    problems = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
        os.close(fd)
        try:
            log(f"fetching {url}")
            got, length = fetch(url, Path(tmp), size)
            if got == sha256 and (size is None or length == size):
                os.chmod(tmp, 0o644)
                os.replace(tmp, target)
                return
            sizes = f"; {length} bytes" + (f", published {size}" if size is not None else "")
            problems.append(f"{url}: not the published file (SHA-256 {got[:12]}..., expected {sha256[:12]}...{sizes})")
        except (OSError, http.client.HTTPException, ValueError) as exc:  # URLError and timeouts are OSErrors
            problems.append(why_not(url, exc))
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise DataError(f"{name}: refused, no mirror gave the published file: " + "; ".join(problems))


def download(dataset: str, to, mirror: str | None = None, datasets=None, log=print) -> Path:
    """Fetch the four files of ``dataset`` into the folder ``to``; returns the folder.

    ``mirror`` (a URL of a folder holding the files) replaces the public
    mirrors; ``datasets`` replaces the table of files and sums (for tests).
    """
    table = (datasets or DATASETS).get(dataset)
    if table is None:
        raise DataError(f"{dataset!r}: unknown dataset; choose one of {', '.join(datasets or DATASETS)}")
    if mirror is not None and not mirror.startswith(("http://", "https://")):
        raise DataError(f"--mirror {mirror}: give an http:// or https:// address of a folder holding the files")
    folder = Path(to)
    if folder.exists() and not folder.is_dir():
        raise DataError(f"--to {folder}: exists and is not a folder")
    check_existing(folder, table["files"])
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for name, (sha256, size) in table["files"].items():
            if (folder / name).exists():
                log(f"{folder / name}: already there, with the published SHA-256")
                continue
            download_file(name, sha256, size, [mirror] if mirror else table["mirrors"], folder, log)
    finally:
        if created and not any(folder.iterdir()):
            folder.rmdir()  # a download that fetched nothing leaves nothing behind
    log(f"{table['title']}: {len(table['files'])} files in {folder}, each checked against its published "
        f"SHA-256; train with: nnscratch train --data {folder}")
    return folder


def check_existing(folder: Path, files: dict) -> None:
    """Refuse, before fetching anything, a folder holding one of the files with another content."""
    for name, (sha256, _) in files.items():
        path = folder / name
        if path.exists() and (not path.is_file() or sha256_of(path) != sha256):
            raise DataError(f"{path}: already there but not the published file (its SHA-256 differs); "
                            "move it away, or choose another --to folder")
