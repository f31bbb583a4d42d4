"""Data files checked before anything runs: every DeepMind TFRecord file the selected runs read
exists and starts with a record in the layout its ``data.source`` expects."""

from __future__ import annotations

from collections.abc import Iterable

from monetk.data.deepmind import LayoutError, check_file

#: Where a user is told to look for the files (README section).
WHERE_TO_GET = ('download DeepMind\'s files into data/ as README.md, section "Paper scale", '
                "shows, or point the spec at your copy with --set "
                "datasets.<dataset>.data.path=<file>")


def data_problems(configs: Iterable[dict]) -> list[str]:
    """One message per distinct data file that is missing, unreadable or in another layout (the
    first record only is read), then one line saying where to get the files; none when every
    file is fine or every run uses a built-in generator."""
    files = {}
    for config in configs:
        data = config["data"]
        if data["source"].endswith("_tfrecord"):
            variant = data["variant"] if data["source"] == "multi_dsprites_tfrecord" else None
            files[(data["path"], data["source"], variant)] = None
    problems = []
    for path, source, variant in files:
        try:
            check_file(path, source, variant)
        except LayoutError as error:
            problems.append(str(error))
    return [*problems, WHERE_TO_GET] if problems else []
