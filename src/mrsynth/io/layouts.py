"""Finding the subjects and contrast files of a dataset folder, in the layouts users actually have.

Layouts: ``manifest`` (CSV ``subject,contrast,path``), ``brats`` (BraTS 2015-2023 case folders),
``isles2015`` (ISLES 2015 ``VSD.Brain.XX.O.MR_<Contrast>.<id>`` folders) and ``folder`` (any tree
of subject folders whose file names contain a contrast name). Nothing here reads voxel data.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from mrsynth.contrasts import CANONICAL_CONTRASTS, CONTRAST_ALIASES, canonical_contrast
from mrsynth.errors import DataError, InputError
from mrsynth.io.volumes import METAIMAGE_SUFFIXES, GridInfo, read_grid, volume_suffix

LAYOUTS: tuple[str, ...] = ("manifest", "brats", "isles2015", "folder")

#: File-name tokens that mark segmentations/masks, which are not image contrasts.
IGNORED_TOKENS: frozenset[str] = frozenset(
    {"seg", "segmentation", "mask", "msk", "label", "labels", "lesion", "lesions", "brainmask", "roi", "ot"}
)

#: File-name endings of BraTS case files (after ``<case>_`` or ``<case>-``).
BRATS_SUFFIXES: dict[str, str] = {
    "t1": "t1", "t1ce": "t1c", "t2": "t2", "flair": "flair",  # BraTS 2015-2021
    "t1n": "t1", "t1c": "t1c", "t2w": "t2", "t2f": "flair",  # BraTS 2023+
}

_MAX_DEPTH = 6

#: The file that marks a folder of prepared slices (``mrsynth prepare``) rather than images.
PREPARED_MARKER = "meta.json"


def is_prepared_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder of preprocessed slices written by ``mrsynth prepare`` (complete or not)."""
    marker = Path(path).expanduser() / PREPARED_MARKER
    if not marker.is_file():
        return False
    try:
        meta = json.loads(marker.read_text())
    except (OSError, ValueError):
        return True  # damaged: say so when loading rather than guess a layout
    return isinstance(meta, dict) and "contrasts" in meta and "subject_info" in meta


@dataclass
class SubjectFiles:
    """One subject: canonical contrast name -> image file."""

    subject: str
    files: dict[str, Path]


@dataclass
class DatasetIndex:
    """The subjects found in a dataset, and every item left out with the reason why."""

    root: Path
    layout: str
    subjects: list[SubjectFiles]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def names(self) -> list[str]:
        """Subject names, in index order."""
        return [s.subject for s in self.subjects]

    def subject(self, name: str) -> SubjectFiles:
        """The subject called ``name`` (KeyError if absent)."""
        for entry in self.subjects:
            if entry.subject == name:
                return entry
        raise KeyError(name)


def _ordered(files: dict[str, Path]) -> dict[str, Path]:
    order = {c: i for i, c in enumerate(CANONICAL_CONTRASTS)}
    return dict(sorted(files.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def _stem_tokens(name: str) -> list[str]:
    suffix = volume_suffix(name)
    stem = name[: -len(suffix)] if suffix else name
    return [t for t in re.split(r"[_\-.]+", stem.lower()) if t]


def is_ignored_file(name: str) -> bool:
    """True for segmentations / masks / labels (not image contrasts), judged by the file name."""
    return any(t in IGNORED_TOKENS for t in _stem_tokens(name))


def contrast_from_filename(name: str) -> str | None:
    """Canonical contrast named in a file name: the LAST token (split on ``_ - .``) that is a known alias.

    Two adjacent tokens are also tried joined (``t1_ce`` -> t1c, ``T2-FLAIR`` -> flair).
    ``TCGA-FG-6692_MRHR_T1_AX_POST_GAD_SE_13_se2d1r_t1c.nii.gz`` -> t1c, ``x_fla_bet.nii.gz`` -> flair.
    """
    tokens = _stem_tokens(name)
    for i in range(len(tokens) - 1, -1, -1):
        if i > 0 and tokens[i - 1] + tokens[i] in CONTRAST_ALIASES:
            return CONTRAST_ALIASES[tokens[i - 1] + tokens[i]]
        if tokens[i] in CONTRAST_ALIASES:
            return CONTRAST_ALIASES[tokens[i]]
    return None


def subject_exclusion(files: dict[str, Path], inputs: tuple[str, ...] = (), target: str | None = None) -> str | None:
    """Why a subject cannot be used for ``inputs -> target`` (``"no flair"``...), or None if it can."""
    if target is not None and target not in files:
        return f"no {target}"
    if inputs and not any(c in files for c in inputs):
        return f"none of the inputs {','.join(inputs)}"
    return None


# ----------------------------------------------------------------------------------- walking


def _children(folder: Path) -> tuple[list[Path], list[Path]]:
    """(image files, sub-folders) directly in ``folder``, sorted, hidden entries left out."""
    try:
        entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError:
        return [], []
    images = [p for p in entries if p.is_file() and volume_suffix(p.name)]
    folders = [p for p in entries if p.is_dir()]
    return images, folders


def _is_vsd(folder: Path) -> bool:
    return folder.name.lower().startswith("vsd.")


def _case_dirs(root: Path) -> list[Path]:
    """Folders that hold a subject: image files directly, or ``VSD.*`` sub-folders."""
    found: list[Path] = []

    def visit(folder: Path, depth: int) -> None:
        images, folders = _children(folder)
        if images or any(_is_vsd(f) for f in folders):
            found.append(folder)
            return
        if depth < _MAX_DEPTH:
            for sub in folders:
                visit(sub, depth + 1)

    visit(root, 0)
    return found


def _subject_names(root: Path, folders: list[Path]) -> list[str]:
    names = [f.name if f != root else root.resolve().name for f in folders]
    if len(set(names)) == len(names):
        return names
    return [f.relative_to(root).as_posix() if f != root else root.resolve().name for f in folders]


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _collect(
    subject: str, candidates: dict[str, list[Path]], skipped: list[tuple[str, str]], root: Path
) -> dict[str, Path]:
    """Keep contrasts with exactly one file; report the others."""
    files: dict[str, Path] = {}
    for contrast, paths in candidates.items():
        if len(paths) == 1:
            files[contrast] = paths[0]
        else:
            names = ", ".join(p.name for p in paths)
            skipped.append((f"{subject}/{contrast}", f"{len(paths)} files for {contrast} ({names}); contrast left out"))
    return _ordered(files)


# ----------------------------------------------------------------------------------- layouts


def _manifest_path(data: Path) -> Path:
    if data.is_file():
        return data
    return data / "manifest.csv"


def _discover_manifest(data: Path) -> tuple[list[SubjectFiles], list[tuple[str, str]]]:
    path = _manifest_path(data)
    if not path.is_file():
        raise DataError(f"no manifest found: {path} does not exist")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [(h or "").strip().lower() for h in (reader.fieldnames or [])]
            rows = [{(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read the manifest {path}: {exc}") from None
    missing = [c for c in ("subject", "contrast", "path") if c not in header]
    if missing:
        raise DataError(f"manifest {path} lacks the column(s) {', '.join(missing)} (needs subject,contrast,path)")
    skipped: list[tuple[str, str]] = []
    candidates: dict[str, dict[str, list[Path]]] = {}
    for line, row in enumerate(rows, start=2):
        subject, name, file = row.get("subject", ""), row.get("contrast", ""), row.get("path", "")
        if not subject or not name or not file:
            skipped.append((f"{path.name} line {line}", "empty subject, contrast or path"))
            continue
        try:
            contrast = canonical_contrast(name)
        except ValueError as exc:
            skipped.append((f"{subject}/{name}", f"{exc} (line {line})"))
            continue
        file_path = Path(file).expanduser()
        if not file_path.is_absolute():
            file_path = path.parent / file_path
        if not file_path.is_file():
            skipped.append((f"{subject}/{contrast}", f"file not found: {file_path} (line {line})"))
            candidates.setdefault(subject, {})
            continue
        candidates.setdefault(subject, {}).setdefault(contrast, []).append(file_path)
    subjects = []
    for subject, found in candidates.items():
        files = _collect(subject, found, skipped, path.parent)
        if files:
            subjects.append(SubjectFiles(subject, files))
    return subjects, skipped


def _vsd_contrast(folder: Path) -> str | None:
    """``VSD.Brain.XX.O.MR_Flair.54512`` -> ``"Flair"``; ``""`` for a segmentation (``.OT.``)."""
    for part in folder.name.split("."):
        if part.upper().startswith("MR_"):
            return part[3:]
        if part.upper() == "OT":
            return ""
    return None


def _vsd_files(
    case: Path, subject: str, root: Path, skipped: list[tuple[str, str]]
) -> dict[str, list[Path]]:
    candidates: dict[str, list[Path]] = {}
    for folder in _children(case)[1]:
        if not _is_vsd(folder):
            continue
        raw = _vsd_contrast(folder)
        if raw == "":
            continue  # segmentation
        if raw is None:
            skipped.append((_rel(folder, root), "no MR_<contrast> part in the VSD folder name"))
            continue
        try:
            contrast = canonical_contrast(raw)
        except ValueError:
            skipped.append((_rel(folder, root), f"contrast {raw!r} is not one mrsynth knows"))
            continue
        images = _children(folder)[0]
        if not images:
            skipped.append((_rel(folder, root), "no .mha/.nii image inside"))
            continue
        candidates.setdefault(contrast, []).extend(images)
    return candidates


def _brats_case_files(
    case: Path, subject: str, root: Path, skipped: list[tuple[str, str]]
) -> dict[str, list[Path]]:
    candidates = _vsd_files(case, subject, root, skipped)
    prefix = case.name.lower()
    for image in _children(case)[0]:
        stem = image.name[: -len(volume_suffix(image.name) or "")].lower()
        rest = stem[len(prefix):] if stem.startswith(prefix) else None
        if rest and rest[0] in "_-" and rest[1:] in BRATS_SUFFIXES:
            candidates.setdefault(BRATS_SUFFIXES[rest[1:]], []).append(image)
        elif not is_ignored_file(image.name):
            skipped.append((_rel(image, root), "not a BraTS file name (<case>_t1/_t1ce/_t2/_flair or "
                                               "<case>-t1n/-t1c/-t2w/-t2f)"))
    return candidates


def _folder_case_files(
    case: Path, subject: str, root: Path, skipped: list[tuple[str, str]]
) -> dict[str, list[Path]]:
    candidates: dict[str, list[Path]] = {}
    for image in _children(case)[0]:
        if is_ignored_file(image.name):
            continue
        contrast = contrast_from_filename(image.name)
        if contrast is None:
            skipped.append((_rel(image, root), "no known contrast name (t1, t1c, t2, flair, dwi...) in the file name"))
            continue
        candidates.setdefault(contrast, []).append(image)
    return candidates


def _discover_cases(data: Path, layout: str) -> tuple[list[SubjectFiles], list[tuple[str, str]]]:
    reader = {"brats": _brats_case_files, "isles2015": _vsd_files, "folder": _folder_case_files}[layout]
    skipped: list[tuple[str, str]] = []
    cases = _case_dirs(data)
    subjects = []
    for case, name in zip(cases, _subject_names(data, cases)):
        before = len(skipped)
        files = _collect(name, reader(case, name, data, skipped), skipped, data)
        if files:
            subjects.append(SubjectFiles(name, files))
        elif len(skipped) > before:
            skipped.append((name, "subject left out: no usable contrast file"))
    return subjects, skipped


def _is_brats_case(case: Path) -> bool:
    images = [p for p in _children(case)[0] if not p.name.startswith(".")]
    prefix = case.name.lower()
    for image in images:
        stem = image.name[: -len(volume_suffix(image.name) or "")].lower()
        rest = stem[len(prefix):] if stem.startswith(prefix) else ""
        if not (rest and rest[0] in "_-" and (rest[1:] in BRATS_SUFFIXES or rest[1:] == "seg")):
            return False
    return bool(images)


def detect_layout(data: Path) -> str:
    """Guess the layout of ``data`` (see :data:`LAYOUTS`)."""
    if data.is_file():
        if data.suffix.lower() == ".csv":
            return "manifest"
        raise DataError(f"{data} is a file, not a dataset folder or manifest .csv")
    if (data / "manifest.csv").is_file():
        return "manifest"
    cases = _case_dirs(data)
    vsd = [f for case in cases for f in _children(case)[1] if _is_vsd(f)]
    if vsd:
        images = [p for f in vsd for p in _children(f)[0]]
        return "brats" if any(volume_suffix(p.name) in METAIMAGE_SUFFIXES for p in images) else "isles2015"
    if cases and all(_is_brats_case(c) for c in cases):
        return "brats"
    return "folder"


def discover_dataset(data: str | Path, layout: str | None = None) -> DatasetIndex:
    """Index the subjects and contrast files of ``data`` (a folder or a manifest CSV).

    ``layout`` is one of :data:`LAYOUTS`, or None to detect it. Raises :class:`DataError` when
    the path is missing, the layout unknown, or no subject with a known contrast is found.
    """
    root = Path(data).expanduser()
    if not root.exists():
        raise DataError(f"dataset not found: {root} does not exist")
    if is_prepared_folder(root):
        raise DataError(f"{root} holds prepared slices (mrsynth prepare), not images; this command needs the original "
                        "dataset (train, evaluate, crossval and the experiments subsets, single-input and transfer "
                        "accept prepared slices)")
    if layout is not None:
        layout = layout.strip().lower()
        if layout not in LAYOUTS:
            raise DataError(f"unknown dataset layout {layout!r}; known layouts: {', '.join(LAYOUTS)}")
    chosen = layout or detect_layout(root)
    if chosen == "manifest":
        subjects, skipped = _discover_manifest(root)
    else:
        if not root.is_dir():
            raise DataError(f"layout {chosen} needs a folder, but {root} is a file")
        subjects, skipped = _discover_cases(root, chosen)
    if not subjects:
        detail = "; ".join(f"{name}: {why}" for name, why in skipped[:5])
        raise DataError(
            f"no subject with a known contrast found in {root} (layout {chosen})" + (f"; skipped: {detail}" if detail else "")
        )
    return DatasetIndex(root=root, layout=chosen, subjects=subjects, skipped=skipped)


# ----------------------------------------------------------------------------------- inspection


def _grid_text(grid: GridInfo) -> str:
    shape = "x".join(str(n) for n in grid.shape)
    size = "x".join(f"{v:.3g}" for v in grid.voxel_size)
    return f"{shape} voxels, {size} mm"


def _subject_lines(entry: SubjectFiles, read_headers: bool, inputs: tuple[str, ...], target: str | None) -> list[str]:
    lines = [f"  {entry.subject}: {', '.join(entry.files)}"]
    if read_headers:
        grids: dict[str, GridInfo] = {}
        for contrast, path in entry.files.items():
            try:
                grids[contrast] = read_grid(path, contrast)
            except InputError as exc:
                lines.append(f"    {contrast}: {exc.problem}")
        values = list(grids.values())
        if values and all(g.same_grid(values[0]) for g in values[1:]):
            lines.append(f"    grid: {_grid_text(values[0])} (all contrasts)")
        elif values:
            width = max(len(c) for c in grids)
            lines += [f"    {c:<{width}}  {_grid_text(g)}" for c, g in grids.items()]
            lines.append("    note: contrasts are on different grids; they will be resampled onto one reference grid")
    reason = subject_exclusion(entry.files, inputs, target)
    if reason:
        lines.append(f"    left out: {reason}")
    return lines


def format_inspection(
    index: DatasetIndex,
    *,
    read_headers: bool = True,
    inputs: tuple[str, ...] = (),
    target: str | None = None,
    required: tuple[str, ...] = (),
) -> str:
    """Human-readable report of a dataset for ``mrsynth inspect``.

    Lists the layout, each subject's contrasts and grids (headers only), a note where a
    subject's contrasts are on different grids, and every skipped item with its reason. With
    ``inputs`` (``required`` is an alias) / ``target``, also says which subjects would be left out and why.
    """
    required = tuple(inputs) or tuple(required)
    lines = [f"dataset: {index.root}", f"layout: {index.layout}", f"subjects: {len(index.subjects)}"]
    for entry in index.subjects:
        lines += _subject_lines(entry, read_headers, tuple(required), target)
    if required or target:
        usable = sum(subject_exclusion(s.files, tuple(required), target) is None for s in index.subjects)
        task = f"{','.join(required) or '?'} -> {target or '?'}"
        lines.append(f"usable for {task}: {usable} of {len(index.subjects)} subjects")
    lines.append(f"skipped: {len(index.skipped)}")
    lines += [f"  {name}: {reason}" for name, reason in index.skipped]
    return "\n".join(lines)
