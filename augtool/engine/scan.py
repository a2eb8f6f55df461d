"""Scan ``RAW/<class>/<image>``: find, validate, hash and group the source images.

Scanning reads every file once, hashes it and checks that it decodes, so that
all bad files are reported together before any output is written.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from augtool import defaults
from augtool.engine.groups import (
    CELLS_CSV,
    check_group_regex,
    compile_group_regex,
    find_duplicates,
    group_of,
    read_cell_groups,
)
from augtool.engine.pool import die_with_parent, fork_available, run_ordered
from augtool.errors import InputError, Message, literal, template_of
from augtool.store.decode import (
    IMAGE_SUFFIXES,
    choose_reduction,
    decode_rgb,
    image_size,
    reduced_shape,
)
from augtool.store.guard import display_path, is_utf8

if TYPE_CHECKING:
    import numpy as np


#: Decoded working images a scan may keep for the render (``keep_size``), in bytes.
KEEP_BUDGET = 256 * 2**20


@dataclass(frozen=True)
class Source:
    """One source image.

    Attributes:
        path: Path relative to RAW, POSIX separators (``WBC/x.jpg``).
        class_name: The class folder's name.
        label: Index of the class in the sorted class list.
        sha256: SHA-256 of the file's bytes (hex).
        width: Width in pixels.
        height: Height in pixels.
        group: The split group (``--group-regex`` match, else the path).
        stem: Output file stem, unique within the class.
    """

    path: str
    class_name: str
    label: int
    sha256: str
    width: int
    height: int
    group: str
    stem: str


@dataclass
class ScanResult:
    """What a scan of RAW found.

    Attributes:
        root: The RAW folder.
        classes: Sorted class names.
        sources: Valid sources sorted by (class, path).
        skipped: ``(path, reason)`` of invalid files skipped with ``skip_invalid``
            (paths as :func:`display_path` prints them: always valid UTF-8).
        duplicates: Groups of source paths with identical bytes.
        ignored: Paths of files that are not images by their suffix, and of
            folder links inside a class (not followed).
        ungrouped: Paths of the sources that ``--group-regex`` did not match, so
            that each is its own group (empty without a regex).
        grouped_by: How groups were found when not by ``--group-regex``: e.g.
            ``smear (cells.csv)`` when RAW is an ``augtool cells`` output; '' otherwise.
        pixels: Sources decoded at their working resolution by the scan's own
            check (``keep_size``), by ``(sha256, reduction)``: the render uses
            them instead of decoding the file a second time. Empty without
            ``keep_size``, and never more than :data:`KEEP_BUDGET` bytes.
    """

    root: Path
    classes: list[str]
    sources: list[Source]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    duplicates: list[list[str]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    ungrouped: list[str] = field(default_factory=list)
    grouped_by: str = ""
    pixels: dict[tuple[str, int], np.ndarray] = field(default_factory=dict, repr=False)

    def counts(self) -> dict[str, int]:
        """Number of sources per class."""
        counts = dict.fromkeys(self.classes, 0)
        for src in self.sources:
            counts[src.class_name] += 1
        return counts


@dataclass(frozen=True)
class FileInfo:
    """Result of inspecting one file: hash and size, or why it is unusable.

    ``pixels`` is the image decoded at 1/``reduction`` when the caller asked to
    keep it (``keep_size``), else None.
    """

    sha256: str = ""
    width: int = 0
    height: int = 0
    error: str = ""
    pixels: np.ndarray | None = field(default=None, repr=False)
    reduction: int = 0


#: Inspection reads 8 bytes per allowed pixel at most (16-bit RGBA), plus room for metadata.
BYTES_PER_PIXEL_LIMIT = 8


METADATA_ALLOWANCE = 64 * 2**20


def _hidden(name: str) -> bool:
    return name.startswith(".")


def list_files(raw: Path) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """List candidate image files under ``raw/<class>/`` (recursively).

    Hidden files and folders are skipped; folder symlinks inside a class are
    not followed (no loops).

    Args:
        raw: The RAW folder.

    Returns:
        ``(classes, files, ignored)``: sorted class names, ``(class, relpath)``
        of every file with an image suffix, and relpaths of other files.

    Raises:
        InputError: If RAW is missing, not a folder, or has no class folders.
    """
    if not raw.exists():
        raise InputError(f"{raw}: no such folder; give the folder that holds one folder per class")
    if not raw.is_dir():
        raise InputError(f"{raw}: not a folder; expected RAW/<class>/<image> files")
    try:
        entries = sorted(os.scandir(raw), key=lambda e: e.name)
    except OSError as err:
        raise InputError(f"{raw}: cannot list ({err.strerror})") from err
    classes = [e.name for e in entries if not _hidden(e.name) and e.is_dir()]
    bad_names = [c for c in classes if not is_utf8(c)]
    if bad_names:
        listing = ", ".join(display_path(c) for c in bad_names)
        raise InputError(
            f"{literal(display_path(raw))}: class folder name(s) not valid UTF-8: "
            f"{literal(listing)}; class names are written to the manifest and HDF5 as UTF-8 "
            "text, so rename the folder(s) ({skip_invalid} skips files, never whole classes)",
            refs=True,
        )
    stray = [
        e.name
        for e in entries
        if not _hidden(e.name) and e.is_file() and Path(e.name).suffix.lower() in IMAGE_SUFFIXES
    ]
    if not classes:
        hint = f" ({len(stray)} images lie directly in it)" if stray else ""
        raise InputError(
            f"{raw}: no class folders{hint}; expected RAW/<class>/<image>, one folder per class"
        )
    files: list[tuple[str, str]] = []
    ignored: list[str] = [f"{name}" for name in stray]
    for cls in classes:
        for dirpath, dirnames, filenames in os.walk(raw / cls):
            rel_dir = PurePosixPath(Path(dirpath).relative_to(raw).as_posix())
            visible = sorted(d for d in dirnames if not _hidden(d))
            links = [d for d in visible if os.path.islink(os.path.join(dirpath, d))]
            ignored.extend(str(rel_dir / d) + "/" for d in links)
            dirnames[:] = [d for d in visible if d not in links]
            for fname in sorted(filenames):
                if _hidden(fname):
                    continue
                rel = str(rel_dir / fname)
                if Path(fname).suffix.lower() in IMAGE_SUFFIXES:
                    files.append((cls, rel))
                else:
                    ignored.append(rel)
    return classes, files, ignored


def _stat_error(path: Path, err: OSError) -> str:
    """Why ``path`` cannot be opened, in words."""
    if err.errno == errno.ELOOP:
        return "symbolic link loop (following the links never reaches a file)"
    if err.errno == errno.ENOENT and path.is_symlink():
        target = display_path(os.readlink(path))
        return f"broken symbolic link (points to {target}, which is missing)"
    return f"cannot read ({err.strerror or err.__class__.__name__})"


def inspect_file(path: Path, max_pixels: int, keep_size: int | None = None) -> FileInfo:
    """Read, hash and check one file.

    The check refuses links that lead nowhere, anything but a regular file,
    files larger than any image of ``max_pixels`` could be, reads the header,
    and decodes the pixels with :func:`augtool.store.decode.decode_rgb`, which first
    looks for the end marker of JPEG and PNG files
    (:func:`augtool.store.decode.truncation`: the same wording as ``preview`` and
    every other decoding path). It decodes at the smallest size (1/8), or, with
    ``keep_size``, at the working resolution ``expand`` renders outputs of that
    side from (:func:`augtool.store.decode.choose_reduction`), and keeps the pixels.

    Args:
        path: The file.
        max_pixels: Refuse images with more pixels than this.
        keep_size: Output side length whose working image to decode and keep.

    Returns:
        The file's hash and size (and pixels), or an error text.
    """
    try:
        info = path.stat()
    except OSError as err:
        return FileInfo(error=_stat_error(path, err))
    if not stat.S_ISREG(info.st_mode):
        return FileInfo(error="not a regular file (a pipe, device or socket named like an image)")
    limit = BYTES_PER_PIXEL_LIMIT * max_pixels + METADATA_ALLOWANCE
    if info.st_size > limit:
        return FileInfo(
            error=Message(
                f"{info.st_size:,} bytes, more than any image within {{max_pixels}} "
                f"{max_pixels:,} can take ({limit:,} bytes)"
            )
        )
    try:
        data = path.read_bytes()
    except OSError as err:
        return FileInfo(error=_stat_error(path, err))
    if not data:
        return FileInfo(error="empty file (0 bytes)")
    digest = hashlib.sha256(data).hexdigest()
    try:
        width, height = image_size(data, "")
    except InputError as err:
        return FileInfo(error=str(err).removeprefix(": "))
    if width * height > max_pixels:
        return FileInfo(
            error=Message(
                f"{width:d}x{height:d} has {width * height:,} pixels, above the limit of "
                f"{max_pixels:,} (raise {{max_pixels}} if the machine has the memory)"
            )
        )
    reduction = 8 if keep_size is None else choose_reduction(width, height, keep_size)
    try:
        pixels = decode_rgb(data, reduction=reduction, name="")
    except InputError as err:
        return FileInfo(error=str(err).removeprefix(": "))
    expected = reduced_shape(width, height, reduction)
    if (pixels.shape[1], pixels.shape[0]) != expected:
        return FileInfo(
            error=f"the header says {width}x{height} but the pixels decode as "
            f"{pixels.shape[1] * reduction}x{pixels.shape[0] * reduction} or so; re-save the file"
        )
    kept = None if keep_size is None else pixels
    return FileInfo(sha256=digest, width=width, height=height, pixels=kept, reduction=reduction)


@dataclass
class _Inspector:
    """:func:`inspect_file` with a budget for kept pixels, one per process that runs it.

    Once this process has kept ``budget`` bytes it checks the remaining files
    at 1/8 again and keeps nothing: the scan never holds more than the budget.
    """

    max_pixels: int
    keep_size: int | None
    budget: int

    def __call__(self, path: Path) -> FileInfo:
        keep = self.keep_size if self.budget > 0 else None
        info = inspect_file(path, self.max_pixels, keep)
        if info.pixels is not None:
            self.budget -= info.pixels.nbytes
            if self.budget < 0:
                info = replace(info, pixels=None)
        return info


def _stems(paths: list[str], cls: str) -> dict[str, str]:
    """Output stems unique within a class: path inside the class without suffix."""
    base = {}
    for p in paths:
        inner = PurePosixPath(p).relative_to(cls)
        base[p] = str(inner.with_suffix("")).replace("/", "__")
    counts: dict[str, int] = defaultdict(int)
    for stem in base.values():
        counts[stem] += 1
    unique = {}
    for p, stem in base.items():
        if counts[stem] > 1:  # a.jpg and a.png in one class: keep the suffix in the stem
            stem = str(PurePosixPath(p).relative_to(cls)).replace("/", "__").replace(".", "_")
        unique[p] = stem
    return unique


def scan(
    raw: str | Path,
    group_regex: str | None = None,
    skip_invalid: bool = False,
    max_pixels: int = defaults.MAX_PIXELS,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
    keep_size: int | None = None,
) -> ScanResult:
    """Scan, validate and hash every source under RAW.

    Args:
        raw: The RAW folder (``RAW/<class>/<image>``).
        group_regex: Regular expression whose match in a source path names its
            split group (e.g. a patient or smear id).
        skip_invalid: Skip bad files (listed in the result) instead of failing.
        max_pixels: Refuse images with more pixels than this.
        workers: Parallel processes for hashing and checking.
        progress: Called with the number of files done after each file.
        keep_size: Keep the sources decoded at the working resolution of
            outputs of this side (``ScanResult.pixels``) for the render, up to
            :data:`KEEP_BUDGET` bytes; their check then decodes at that
            resolution instead of 1/8.

    Returns:
        The scan result.

    Raises:
        InputError: On a missing RAW, no class folders, an empty class, or bad
            files (all listed) when ``skip_invalid`` is false.
        OptionError: On an invalid ``group_regex``, or one that matches no file
            (checked before any file is read).
    """
    root = Path(raw)
    regex = compile_group_regex(group_regex)
    classes, files, ignored = list_files(root)
    if regex is not None:
        check_group_regex(str(group_regex), regex, [rel for _, rel in files])
    cell_groups = read_cell_groups(root) if regex is None else None
    named = [rel for _, rel in files if is_utf8(rel)]
    found = _inspect_all([root / r for r in named], max_pixels, workers, progress, keep_size)
    checked = dict(zip(named, found, strict=True))
    not_utf8 = FileInfo(
        error="file name is not valid UTF-8 (undecodable bytes shown as \\xNN); the manifest "
        "and HDF5 store names as UTF-8 text, so rename the file"
    )
    infos = [checked.get(rel, not_utf8) for _, rel in files]
    bad = [
        (display_path(rel), info.error)
        for (_, rel), info in zip(files, infos, strict=True)
        if info.error
    ]
    by_class: dict[str, list[tuple[str, FileInfo]]] = {c: [] for c in classes}
    for (cls, rel), info in zip(files, infos, strict=True):
        if not info.error:
            by_class[cls].append((rel, info))
    empty = [c for c in classes if not by_class[c]]
    empty_line = (  # a template: the folder names escaped
        "class folder(s) with no usable images: "
        + literal(", ".join(empty))
        + "; add images or remove the folder"
    )
    if bad and not skip_invalid:  # everything wrong with RAW in one message
        listing = "\n".join(
            f"  {literal(display_path(root))}/{literal(rel)}: {template_of(why)}"
            for rel, why in bad
        )
        also = (
            f"\nAlso, {empty_line} ({{skip_invalid}} skips files, never whole classes)."
            if empty
            else ""
        )
        raise InputError(
            f"{len(bad)} of {len(files)} files in {literal(display_path(root))} are not usable "
            "images:\n"
            + listing
            + "\nFix or remove them, or pass {skip_invalid} to leave them out."
            + also,
            refs=True,
        )
    if empty:
        raise InputError(literal(root) + ": " + empty_line, refs=True)
    sources = []
    for label, cls in enumerate(classes):
        stems = _stems([rel for rel, _ in by_class[cls]], cls)
        for rel, info in by_class[cls]:
            sources.append(
                Source(
                    path=rel,
                    class_name=cls,
                    label=label,
                    sha256=info.sha256,
                    width=info.width,
                    height=info.height,
                    group=(
                        cell_groups.get(rel, rel)
                        if cell_groups is not None
                        else group_of(rel, regex)
                    ),
                    stem=stems[rel],
                )
            )
    if regex is not None:  # the files it matched may all have been skipped as invalid
        check_group_regex(str(group_regex), regex, [s.path for s in sources])
    pixels = {
        (info.sha256, info.reduction): info.pixels
        for info in infos
        if info.pixels is not None and not info.error
    }
    return ScanResult(
        root=root,
        classes=classes,
        sources=sources,
        skipped=bad,
        duplicates=find_duplicates(sources),
        ignored=[display_path(p) for p in ignored],
        ungrouped=[] if regex is None else [s.path for s in sources if not regex.search(s.path)],
        grouped_by=f"smear ({CELLS_CSV})" if cell_groups is not None else "",
        pixels=pixels,
    )


def _inspect_in_worker(path: Path, max_pixels: int) -> FileInfo:
    """:func:`inspect_file` in a worker process, which ends if the main process is killed."""
    die_with_parent()
    return inspect_file(path, max_pixels)


def _inspect_all(
    paths: list[Path],
    max_pixels: int,
    workers: int,
    progress: Callable[[int], None] | None,
    keep_size: int | None = None,
) -> list[FileInfo]:
    if workers <= 1 or len(paths) < 2 * workers:
        inspect = _Inspector(max_pixels, keep_size, KEEP_BUDGET)
        out = []
        for i, p in enumerate(paths):
            out.append(inspect(p))
            if progress:
                progress(i + 1)
        return out
    out = []
    if fork_available():  # each forked worker keeps its share of the budget
        inspect = _Inspector(max_pixels, keep_size, KEEP_BUDGET // workers)
        for i, info in enumerate(run_ordered(inspect, paths, workers)):
            out.append(info)
            if progress:
                progress(i + 1)
        return out
    from joblib import Parallel, delayed

    jobs = Parallel(n_jobs=workers, return_as="generator", batch_size=8)(
        delayed(_inspect_in_worker)(p, max_pixels) for p in paths
    )
    for i, info in enumerate(jobs):
        out.append(info)
        if progress:
            progress(i + 1)
    return out


def output_stems(paths: list[str]) -> dict[str, str]:
    """Output stems: path without suffix, ``/`` as ``__``; with the suffix where two share one."""
    base = {p: str(PurePosixPath(p).with_suffix("")).replace("/", "__") for p in paths}
    taken = Counter(base.values())
    return {
        p: stem if taken[stem] == 1 else p.replace("/", "__").replace(".", "_")
        for p, stem in base.items()
    }


#: The one class of a folder of annotated images (boxes or masks): ``OUT/<split>/images/``.
IMAGES = "images"


def annotated_sources(
    images: Sequence[str], infos: Mapping[str, FileInfo], regex: re.Pattern[str] | None
) -> list[Source]:
    """The sources of a folder of annotated images, all of class :data:`IMAGES`.

    Args:
        images: Paths of the usable images, relative to RAW, in source order.
        infos: What :func:`inspect_file` found of each (its hash and size).
        regex: The compiled ``group_regex``; ``None``: each image its own group.
    """
    stems = output_stems(list(images))
    return [
        Source(
            path=image,
            class_name=IMAGES,
            label=0,
            sha256=infos[image].sha256,
            width=infos[image].width,
            height=infos[image].height,
            group=group_of(image, regex),
            stem=stems[image],
        )
        for image in images
    ]
