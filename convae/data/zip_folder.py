"""A zip of an image folder (:mod:`convae.data.folders`), read safely into memory.

The app takes such a zip from a visitor, so nothing in it is trusted. The archive is
read in memory (nothing is written to disk, so no path in it can point anywhere) and
refused, with a one-line reason, when it is:

- not a zip, encrypted, damaged (a wrong checksum), or larger than the limits;
- a zip bomb: the sizes its directory declares add up to too much, an entry expands
  far more than pictures do (its compression ratio), or an entry's data is longer than
  it declares (what is read is capped at the declared size and then checked);
- a path trap: an absolute path (``/etc/...``, ``C:...``), a ``..`` part, a symbolic
  link or any special file (by the Unix mode in its external attributes);
- thousands of tiny files (more entries than the limit).

Then the folder's own rules apply (non-images refused, and so on). The folder may be
the zip's root (``train/``, ``test/``) or its one top-level folder (``mine/train/...``).
"""

from __future__ import annotations

import io
import re
import stat
import zipfile
from dataclasses import dataclass

from convae.base.errors import DatasetError
from convae.data.folders import Entry, FolderLimits, Splits, Tree, ignored, load_tree
from convae.data.png_folder import Progress


@dataclass(frozen=True)
class ZipLimits:
    """What a zip may hold at most.

    Attributes:
        zip_bytes: the archive itself.
        entries: files and folders in its directory.
        unpacked_bytes: all its files' declared sizes together.
        ratio: how much larger than its compressed data an entry may be (pictures are
            compressed already: PNG and JPEG barely shrink, a bomb shrinks a thousandfold).
        images: images taken.
    """

    zip_bytes: int = 10_000_000
    entries: int = 6_000
    unpacked_bytes: int = 64_000_000
    ratio: int = 50
    images: int = 5_000


RATIO_FREE_BYTES = 256 * 1024  # smaller entries are not judged by their ratio
_DRIVE = re.compile(r"^[A-Za-z]:")


def _safe_path(name: str, where: str) -> str:
    """The entry's path as "/"-separated parts, or DatasetError for a path trap."""
    if "\x00" in name:
        raise DatasetError(f"{where} holds a file name with a NUL character; it is refused")
    path = name.replace("\\", "/")
    shown = path[:80]
    if path.startswith("/") or _DRIVE.match(path):
        raise DatasetError(f"{where} holds an absolute path ({shown}); it is refused")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise DatasetError(f"{where} holds a path that climbs out with '..' ({shown}); refused")
    return "/".join(parts)


def _kind(info: zipfile.ZipInfo) -> str:
    """ "dir", "file", or what else the entry's Unix mode says it is."""
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "special file"
    return "dir" if info.is_dir() or stat.S_ISDIR(mode) else "file"


def zip_tree(data: bytes, where: str, limits: ZipLimits = ZipLimits()) -> Tree:
    """Every file of the zip in memory, checked (see the module), as a :class:`Tree`.

    Args:
        where: what messages call the zip, e.g. its file name.

    Raises:
        DatasetError: one line saying why the zip is refused.
    """
    if len(data) > limits.zip_bytes:
        raise DatasetError(
            f"{where} is {len(data) / 1e6:.1f} MB; zips up to {limits.zip_bytes / 1e6:.0f} MB "
            "are taken"
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise DatasetError(f"{where} is not a zip file (or a damaged one)") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.entries:
            raise DatasetError(
                f"{where} holds {len(infos):,} entries; at most {limits.entries:,} files and "
                "folders are taken"
            )
        declared = sum(i.file_size for i in infos)
        if declared > limits.unpacked_bytes:
            raise DatasetError(
                f"{where} would unpack to {declared / 1e6:,.0f} MB; at most "
                f"{limits.unpacked_bytes / 1e6:.0f} MB are taken"
            )
        tree = Tree(where)
        seen: set[str] = set()
        wanted: list[tuple[str, zipfile.ZipInfo]] = []
        for info in infos:
            path = _safe_path(info.filename, where)
            kind = _kind(info)
            if kind not in ("dir", "file"):
                raise DatasetError(f"{where} holds a {kind} ({path[:80]}); it is refused")
            if info.flag_bits & 0x1:
                raise DatasetError(f"{where} is encrypted ({path[:80]}); it is refused")
            if not path or any(ignored(p) for p in path.split("/")):
                continue  # __MACOSX/, .DS_Store and the like
            if path in seen:
                raise DatasetError(f"{where} holds {path[:80]} twice; it is refused")
            seen.add(path)
            parts = path.split("/")
            tree.folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
            if kind == "dir":
                tree.folders.add(path)
                continue
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > RATIO_FREE_BYTES and ratio > limits.ratio:
                raise DatasetError(
                    f"{path[:80]} in {where} expands {ratio:,.0f} times (at most "
                    f"{limits.ratio}): a zip bomb, not pictures; refused"
                )
            wanted.append((path, info))
        root = _root(tree)
        total = 0
        for path, info in wanted:
            if root and not path.startswith(root + "/"):
                continue
            try:
                with archive.open(info) as f:
                    content = f.read(info.file_size + 1)  # never more than it declares
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as e:
                raise DatasetError(f"{path[:80]} in {where} cannot be read ({e})") from None
            if len(content) != info.file_size:
                raise DatasetError(
                    f"{path[:80]} in {where} is not the size its zip entry declares; refused"
                )
            total += len(content)
            if total > limits.unpacked_bytes:  # cannot happen past the checks; cheap to keep
                raise DatasetError(f"{where} unpacks to more than declared; refused")
            rel = path[len(root) + 1 :] if root else path
            tree.files.append(_entry(rel, content))
    if root:
        cut = len(root) + 1
        tree.folders = {f[cut:] for f in tree.folders if f.startswith(root + "/")}
    return tree


def _root(tree: Tree) -> str:
    """ "" if train/ is at the zip's root; else its one top-level folder that holds it."""
    if "train" in tree.folders:
        return ""
    tops = {f.split("/")[0] for f in tree.folders}
    if len(tops) == 1:
        top = tops.pop()
        if f"{top}/train" in tree.folders:
            return top
    return ""


def _entry(path: str, content: bytes) -> Entry:
    return Entry(path, len(content), lambda: content)


def load_zip(
    data: bytes,
    where: str,
    shape: tuple[int, ...] | None = None,
    limits: ZipLimits = ZipLimits(),
    on_progress: Progress | None = None,
) -> tuple[tuple[str, ...], Splits]:
    """A zipped image folder decoded: (classes, {split: (images, labels)}).

    Raises:
        DatasetError: the zip or the folder in it is refused (one line saying why).
    """
    tree = zip_tree(data, where, limits)
    folder_limits = FolderLimits(
        images=limits.images, entries=limits.entries, bytes=limits.unpacked_bytes
    )
    return load_tree(tree, shape, folder_limits, on_progress)
