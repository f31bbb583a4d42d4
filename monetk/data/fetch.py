"""``python -m monetk.data fetch [DATASET ...]``: download DeepMind's multi_object_datasets files.

Each file is downloaded over HTTPS into ``<dir>/<name>.part`` (a partial file is resumed with an
HTTP ``Range`` request; a server that ignores it sends the whole file again, which replaces the
part), then checked: its size against the server's, every TFRecord record's length and data
CRC-32C (:func:`monetk.data.tfrecord.read_records`) and the first record's layout
(:func:`monetk.data.deepmind.check_file`); only then is it renamed into place, so the final path
holds a checked file or nothing. A file already at the final path in the right layout is skipped
without contacting the server. Exit status: 0 every file present, 1 a file could not be
downloaded or was refused, 2 a bad command line.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from monetk.data.deepmind import LayoutError, check_file
from monetk.data.tfrecord import TFRecordError, read_records

DEFAULT_BASE_URL = "https://storage.googleapis.com/multi-object-datasets"
#: The folder ``specs/base.yaml``'s data paths name.
DEFAULT_DIR = "data"
CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60.0
#: Resumed attempts after a transfer is cut, within one command.
RETRIES = 3
DESCRIPTION = ("Download DeepMind's multi_object_datasets files (resuming a partial download), "
               "check their size, record CRCs and layout, and place them in --dir.")


@dataclass(frozen=True)
class Remote:
    """One published file: where it lies under the base URL and the layout it must have."""

    dataset: str
    remote_path: str
    source: str
    variant: str | None

    @property
    def name(self) -> str:
        return self.remote_path.rsplit("/", 1)[-1]

    def url(self, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/{self.remote_path}"


#: The files the paper's specs read (``specs/base.yaml``), by dataset.
FILES = {
    "multi_dsprites": Remote(
        "multi_dsprites",
        "multi_dsprites/multi_dsprites_colored_on_colored.tfrecords",
        "multi_dsprites_tfrecord",
        "colored_on_colored",
    ),
    "objects_room": Remote(
        "objects_room", "objects_room/objects_room_train.tfrecords", "objects_room_tfrecord", None
    ),
}


class FetchError(RuntimeError):
    """A file could not be downloaded or was refused; the message is one line."""


class _Cut(Exception):
    """The transfer ended before the whole file arrived (the part is kept)."""


def fetch(remote: Remote, folder: str | os.PathLike, base_url: str = DEFAULT_BASE_URL,
          retries: int = RETRIES) -> tuple[Path, str]:
    """Download, check and place ``remote`` in ``folder``; return its path and what was done
    (``"present"`` or ``"downloaded"``). Raise :class:`FetchError` on any failure."""
    final = Path(folder) / remote.name
    if final.exists():
        try:
            check_file(final, remote.source, remote.variant)
        except LayoutError as error:
            raise FetchError(f"{final} exists but is not DeepMind's file ({error}); move it away "
                             "and run again") from error
        return final, "present"
    part = final.with_name(final.name + ".part")
    url = remote.url(base_url)
    total = _download(url, part, retries)
    _verify(part, total, remote, url)
    os.replace(part, final)
    return final, "downloaded"


def _download(url: str, part: Path, retries: int) -> int | None:
    """Transfer ``url`` into ``part``, resuming after a cut up to ``retries`` times; return the
    size the server announced (None if it did not)."""
    for attempt in range(retries + 1):
        try:
            return _transfer(url, part)
        except _Cut as cut:
            if attempt == retries:
                raise FetchError(f"cannot download {url}: {cut}; the bytes received are kept "
                                 f"in {part}: run the same command again to resume") from None
            print(f"{url}: {cut}; resuming", file=sys.stderr)
    raise AssertionError("unreachable")


def _transfer(url: str, part: Path) -> int | None:
    """One request: from the part's end if it exists (``Range``), else from the start."""
    offset = part.stat().st_size if part.exists() else 0
    response, start, total = _open(url, offset)
    if response is None:  # 416 and the part is already the whole file
        return total
    if offset and start == 0:
        print(f"{url}: the server sent the whole file again; restarting", file=sys.stderr)
    size = start
    part.parent.mkdir(parents=True, exist_ok=True)
    with response, open(part, "r+b" if start else "wb") as stream, _bar(total, start, url) as bar:
        stream.seek(start)
        stream.truncate()
        try:
            while chunk := response.read(CHUNK_BYTES):
                stream.write(chunk)
                size += len(chunk)
                bar.update(len(chunk))
        except (http.client.IncompleteRead, OSError) as error:  # reset, timeout, cut
            partial = getattr(error, "partial", b"")
            stream.write(partial)
            size += len(partial)
            raise _Cut(f"the connection broke after {size:,} bytes ({error})") from None
        finally:
            stream.flush()
            os.fsync(stream.fileno())
    if total is not None and size < total:
        raise _Cut(f"the connection closed after {size:,} of {total:,} bytes")
    return total


def _open(url: str, offset: int) -> tuple[http.client.HTTPResponse | None, int, int | None]:
    """The response to a GET of ``url`` from byte ``offset``, the offset its body starts at in
    the file (0 when the server ignored the range) and the file's size (None if unknown)."""
    headers = {"User-Agent": "monetk-fetch"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                          timeout=TIMEOUT_S)
    except urllib.error.HTTPError as error:
        range_total = _range_total(error.headers.get("Content-Range"))
        error.close()
        if error.code == 416 and offset:
            if range_total == offset:
                return None, offset, offset
            return _open(url, 0)  # the part is longer than the file: start again
        raise FetchError(f"cannot download {url}: HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        raise FetchError(f"cannot download {url}: {error.reason} (is the network up?)") from None
    except (http.client.HTTPException, OSError) as error:
        raise FetchError(f"cannot download {url}: {error}") from None
    length = response.headers.get("Content-Length")
    if response.status == 206:
        match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", ""))
        if match is None or int(match[1]) != offset:
            response.close()
            return _open(url, 0)
        return response, offset, None if match[2] == "*" else int(match[2])
    return response, 0, int(length) if length and length.isdigit() else None


def _range_total(content_range: str | None) -> int | None:
    match = re.fullmatch(r"bytes \*/(\d+)", content_range or "")
    return int(match[1]) if match else None


def _bar(total: int | None, initial: int, url: str) -> tqdm:
    """Bytes received, on stderr (redrawn every 30 s when stderr is not a terminal)."""
    name = url.rsplit("/", 1)[-1]
    return tqdm(total=total, initial=initial, desc=name, unit="B", unit_scale=True,
                unit_divisor=1024, file=sys.stderr,
                mininterval=0.1 if sys.stderr.isatty() else 30.0)


def _verify(part: Path, total: int | None, remote: Remote, url: str) -> None:
    """Check the downloaded part; remove it and raise :class:`FetchError` if it is wrong."""
    try:
        size = part.stat().st_size
        if total is not None and size != total:
            raise FetchError(f"{size:,} bytes received, the server announced {total:,}")
        records = tqdm(read_records(part), desc=f"checking {remote.name}", unit=" records",
                       file=sys.stderr, mininterval=0.1 if sys.stderr.isatty() else 30.0)
        count = sum(1 for _ in records)
        records.close()
        if not count:
            raise FetchError("the file holds no records")
        check_file(part, remote.source, remote.variant)
    except (FetchError, TFRecordError, LayoutError, OSError) as error:
        part.unlink(missing_ok=True)
        raise FetchError(f"refused {url}: {error}; the download was removed") from None


def _dataset(name: str) -> str:
    if name not in FILES:
        raise argparse.ArgumentTypeError(f"{name!r} is not one of {', '.join(FILES)}")
    return name


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``fetch`` command's arguments."""
    parser.add_argument("datasets", nargs="*", type=_dataset, metavar="DATASET",
                        help=f"which files: {', '.join(FILES)} (default: both)")
    parser.add_argument("--dir", default=DEFAULT_DIR,
                        help=f"folder to write into (default: {DEFAULT_DIR}/, where "
                        "specs/base.yaml looks)")
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL,
                        help=f"where the files lie, e.g. a mirror (default: {DEFAULT_BASE_URL})")
    parser.add_argument("--retries", type=int, default=RETRIES,
                        help=f"resumed attempts after a cut transfer (default {RETRIES})")


def run(args: argparse.Namespace) -> int:
    """Fetch each chosen file; one line per file, errors on stderr; 0 if all are in place."""
    failed = 0
    for dataset in dict.fromkeys(args.datasets or FILES):
        remote = FILES[dataset]
        try:
            path, done = fetch(remote, args.dir, args.base_url, max(0, args.retries))
        except FetchError as error:
            print(f"{dataset}: {error}", file=sys.stderr)
            failed += 1
            continue
        what = ("already present in DeepMind's layout; skipped" if done == "present"
                else "downloaded; its size, record CRCs and layout are checked")
        print(f"{dataset}: {path}: {what}")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``fetch`` alone, as a command line."""
    parser = argparse.ArgumentParser(prog="python -m monetk.data fetch",
                                     description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))
