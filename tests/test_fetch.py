"""``python -m monetk.data fetch`` against a local HTTP server on loopback that serves small files
in DeepMind's layout (written by the independent ``tfrecord`` writer: the ``deepmind`` fixture)."""

import re
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from monetk.data import fetch
from monetk.data.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
MD = fetch.FILES["multi_dsprites"]
OR = fetch.FILES["objects_room"]


class Files:
    """What the server serves and how it misbehaves; it records each request's Range header."""

    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}
        self.ranges: list[str | None] = []
        self.cut_after: int | None = None  # the next response stops after this many bytes
        self.ignore_range = False


def _handler(files: Files) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = files.bodies.get(self.path)
            requested = self.headers.get("Range")
            files.ranges.append(requested)
            if body is None:
                self.send_error(404)
                return
            start = 0
            if requested and not files.ignore_range:
                start = int(re.fullmatch(r"bytes=(\d+)-", requested)[1])
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            payload = body[start:]
            if files.cut_after is not None:  # the connection closes mid-body
                payload, files.cut_after = payload[:files.cut_after], None
                self.close_connection = True
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def server():
    """A loopback HTTP server: yields (its base URL, its :class:`Files`)."""
    files = Files()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(files))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", files
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _deepmind_file(deepmind, tmp_path, remote, compress=True) -> bytes:
    """A 3-record file of ``remote``'s dataset and variant in DeepMind's layout, as bytes."""
    variant = remote.variant or "train"
    images, labels = deepmind.random_scenes(3, deepmind.entities[(remote.dataset, variant)])
    path = tmp_path / f"source-{remote.name}"
    deepmind.write(path, images, labels, remote.dataset, variant, compress=compress)
    return path.read_bytes()


def _serve(files, deepmind, tmp_path, remote, compress=True) -> bytes:
    body = _deepmind_file(deepmind, tmp_path, remote, compress)
    files.bodies[f"/{remote.remote_path}"] = body
    return body


def _fetch(base_url, folder, *args):
    return main(["fetch", *args, "--dir", str(folder), "--base-url", base_url])


def test_the_files_are_where_the_specs_look():
    datasets = yaml.safe_load((ROOT / "specs" / "base.yaml").read_text())["datasets"]
    for dataset, remote in fetch.FILES.items():
        data = datasets[dataset]["data"]
        assert data["path"] == f"{fetch.DEFAULT_DIR}/{remote.name}"
        assert data["source"] == remote.source and data.get("variant") == remote.variant


def test_fetch_downloads_checks_and_places_both_files(server, deepmind, tmp_path, capsys):
    base_url, files = server
    bodies = {r: _serve(files, deepmind, tmp_path, r) for r in (MD, OR)}
    out = tmp_path / "data"
    assert _fetch(base_url, out, "multi_dsprites", "objects_room") == 0
    for remote, body in bodies.items():
        assert (out / remote.name).read_bytes() == body
    assert sorted(p.name for p in out.iterdir()) == sorted(r.name for r in bodies)
    assert files.ranges == [None, None]
    assert capsys.readouterr().out.count("record CRCs and layout are checked") == 2
    # present and valid: skipped without a request
    assert _fetch(base_url, out) == 0
    assert files.ranges == [None, None]
    assert capsys.readouterr().out.count("already present") == 2


def test_a_cut_transfer_resumes_with_a_range_request(server, deepmind, tmp_path):
    base_url, files = server
    body = _serve(files, deepmind, tmp_path, OR)
    files.cut_after = 10_000
    assert _fetch(base_url, tmp_path / "data", "objects_room") == 0
    assert files.ranges == [None, "bytes=10000-"]
    assert (tmp_path / "data" / OR.name).read_bytes() == body
    assert not (tmp_path / "data" / f"{OR.name}.part").exists()


def test_a_cut_transfer_is_kept_and_the_next_command_resumes_it(server, deepmind, tmp_path,
                                                                 capsys):
    base_url, files = server
    body = _serve(files, deepmind, tmp_path, OR)
    out = tmp_path / "data"
    files.cut_after = 12_345
    assert _fetch(base_url, out, "objects_room", "--retries", "0") == 1
    err = capsys.readouterr().err
    assert "connection closed after 12,345 of" in err and "run the same command again" in err
    assert not (out / OR.name).exists()
    assert (out / f"{OR.name}.part").read_bytes() == body[:12_345]
    assert _fetch(base_url, out, "objects_room") == 0
    assert files.ranges == [None, "bytes=12345-"]
    assert (out / OR.name).read_bytes() == body


def test_a_server_that_ignores_the_range_restarts_the_file(server, deepmind, tmp_path):
    base_url, files = server
    body = _serve(files, deepmind, tmp_path, OR)
    out = tmp_path / "data"
    out.mkdir()
    (out / f"{OR.name}.part").write_bytes(b"not the start of the file" * 40)
    files.ignore_range = True
    assert _fetch(base_url, out, "objects_room") == 0
    assert files.ranges == ["bytes=1000-"]
    assert (out / OR.name).read_bytes() == body


def test_a_corrupted_record_is_refused_and_nothing_is_placed(server, deepmind, tmp_path, capsys):
    base_url, files = server
    body = bytearray(_serve(files, deepmind, tmp_path, OR, compress=False))
    body[-10] ^= 0xFF  # inside the last record's data: only a check of every record sees it
    files.bodies[f"/{OR.remote_path}"] = bytes(body)
    out = tmp_path / "data"
    assert _fetch(base_url, out, "objects_room") == 1
    (line,) = capsys.readouterr().err.strip().splitlines()[-1:]
    assert f"refused {base_url}/{OR.remote_path}" in line
    assert "record 2: CRC mismatch in the data" in line and "the download was removed" in line
    assert list(out.iterdir()) == []


def test_a_file_in_another_layout_is_refused(server, deepmind, tmp_path, capsys):
    base_url, files = server
    files.bodies[f"/{OR.remote_path}"] = _deepmind_file(deepmind, tmp_path, MD)
    out = tmp_path / "data"
    assert _fetch(base_url, out, "objects_room") == 1
    assert "record 0: feature 'mask'" in capsys.readouterr().err
    assert list(out.iterdir()) == []


def test_no_server_is_one_line_naming_the_url_and_exit_1(tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    done = subprocess.run(
        [sys.executable, "-m", "monetk.data", "fetch", "objects_room", "--dir",
         str(tmp_path / "data"), "--base-url", base_url],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip() == (f"objects_room: cannot download {base_url}/{OR.remote_path}: "
                                   "[Errno 111] Connection refused (is the network up?)")
    assert not (tmp_path / "data").exists()


def test_a_complete_part_is_checked_and_placed_after_a_416(server, deepmind, tmp_path):
    base_url, files = server
    body = _serve(files, deepmind, tmp_path, OR)
    out = tmp_path / "data"
    out.mkdir()
    (out / f"{OR.name}.part").write_bytes(body)  # a command stopped after the transfer
    assert _fetch(base_url, out, "objects_room") == 0
    assert files.ranges == [f"bytes={len(body)}-"]
    assert (out / OR.name).read_bytes() == body
