"""Reading and writing 3D MR volumes (NIfTI and MetaImage), with one clear error per bad file.

Every problem with an input file is raised as :class:`~mrsynth.errors.InputError` naming the file,
its contrast and what is wrong; numpy/nibabel/SimpleITK exceptions never reach the user.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from mrsynth.errors import InputError

#: File name endings that :func:`load_volume` reads.
NIFTI_SUFFIXES: tuple[str, ...] = (".nii.gz", ".nii")
METAIMAGE_SUFFIXES: tuple[str, ...] = (".mha", ".mhd")
VOLUME_SUFFIXES: tuple[str, ...] = NIFTI_SUFFIXES + METAIMAGE_SUFFIXES

# ITK stores physical points in LPS; nibabel affines are RAS. This flips x and y.
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


@dataclass
class Volume:
    """A 3D image: ``data[x, y, z]`` (float32) and the voxel-to-RAS-millimetre ``affine``."""

    data: np.ndarray
    affine: np.ndarray
    path: Path | None = None
    contrast: str | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """Grid size in voxels."""
        return tuple(int(n) for n in self.data.shape)  # type: ignore[return-value]

    @property
    def voxel_size(self) -> tuple[float, float, float]:
        """Voxel edge lengths in mm, taken from the affine's columns."""
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]


@dataclass(frozen=True)
class GridInfo:
    """A volume's grid read from its header only (no voxel data): shape, voxel size and affine."""

    shape: tuple[int, ...]
    voxel_size: tuple[float, ...]
    affine: np.ndarray

    def same_grid(self, other: "GridInfo", atol: float = 1e-3) -> bool:
        """True when both grids have the same shape and (nearly) the same affine."""
        return self.shape == other.shape and bool(np.allclose(self.affine, other.affine, atol=atol))


def volume_suffix(path: str | Path) -> str | None:
    """The recognised image suffix of ``path`` (``".nii.gz"``, ``".mha"``...), or None."""
    name = Path(path).name.lower()
    for suffix in VOLUME_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return None


def _check_path(path: Path, contrast: str | None) -> str:
    if not path.exists():
        raise InputError("file not found", path=path, contrast=contrast)
    if not path.is_file():
        raise InputError("is not a file (a folder?)", path=path, contrast=contrast)
    suffix = volume_suffix(path)
    if suffix is None:
        raise InputError(
            "not a NIfTI (.nii, .nii.gz) or MetaImage (.mha, .mhd) image file", path=path, contrast=contrast
        )
    return suffix


def _itk_affine(direction: np.ndarray, spacing: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """Voxel (x, y, z) -> RAS mm affine from ITK's LPS direction, spacing and origin."""
    affine = np.eye(4)
    affine[:3, :3] = _LPS_TO_RAS @ direction @ np.diag(spacing)
    affine[:3, 3] = _LPS_TO_RAS @ origin
    return affine


def _read_metaimage(path: Path, contrast: str | None) -> tuple[np.ndarray, np.ndarray]:
    import SimpleITK as sitk

    try:
        image = sitk.ReadImage(str(path))
        if image.GetNumberOfComponentsPerPixel() != 1:
            raise InputError(
                f"has {image.GetNumberOfComponentsPerPixel()} values per voxel; expected one 3D scalar volume",
                path=path,
                contrast=contrast,
            )
        array = sitk.GetArrayViewFromImage(image).astype(np.float32)  # (z, y, x) or (t, z, y, x)
        dim = image.GetDimension()
        direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(dim, dim)[:3, :3]
        spacing = np.asarray(image.GetSpacing(), dtype=np.float64)[:3]
        origin = np.asarray(image.GetOrigin(), dtype=np.float64)[:3]
    except InputError:
        raise
    except Exception as exc:  # SimpleITK raises RuntimeError with long C++ messages
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot read this MetaImage file (unreadable or corrupt): {first}", path=path,
                         contrast=contrast) from None
    if dim < 3:
        raise InputError(f"is a {dim}D image; expected a 3D volume", path=path, contrast=contrast)
    return np.ascontiguousarray(array.T), _itk_affine(direction, spacing, origin)


def _read_nifti(path: Path, contrast: str | None) -> tuple[np.ndarray, np.ndarray]:
    try:
        image = nib.load(str(path))
        if not isinstance(image, (nib.Nifti1Image, nib.Nifti2Image)):
            raise InputError("is not a NIfTI image", path=path, contrast=contrast)
        data = np.asarray(image.get_fdata(dtype=np.float32))
        affine = np.asarray(image.affine, dtype=np.float64)
    except InputError:
        raise
    except MemoryError:
        raise InputError("is too large to load into memory", path=path, contrast=contrast) from None
    except Exception as exc:  # nibabel/gzip/zlib/numpy errors on damaged files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot read this NIfTI file (unreadable or corrupt): {reason}", path=path,
                         contrast=contrast) from None
    return data, affine


def _as_3d(data: np.ndarray, path: Path, contrast: str | None) -> np.ndarray:
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim > 3:
        raise InputError(
            f"is a {data.ndim}D image of shape {tuple(data.shape)}; expected one 3D volume "
            "(split a 4D series into separate files first)",
            path=path,
            contrast=contrast,
        )
    if data.ndim < 3:
        raise InputError(f"is a {data.ndim}D image; expected a 3D volume", path=path, contrast=contrast)
    return data


def _check_values(data: np.ndarray, path: Path, contrast: str | None) -> None:
    finite = np.isfinite(data)
    if not finite.all():
        n_nan = int(np.isnan(data).sum())
        n_inf = int(data.size - finite.sum() - n_nan)
        parts = [f"{n} {kind} voxels" for n, kind in ((n_nan, "NaN"), (n_inf, "infinite")) if n]
        raise InputError(f"contains {' and '.join(parts)}", path=path, contrast=contrast)
    if not data.any():
        raise InputError("is empty: every voxel is zero", path=path, contrast=contrast)


def load_volume(path: str | Path, contrast: str | None = None) -> Volume:
    """Load a 3D NIfTI or MetaImage volume as float32 with a RAS affine.

    A trailing singleton 4th dimension is dropped. Raises :class:`InputError` for a missing,
    unreadable or non-image file, a 4D series, NaN/Inf voxels or an all-zero volume.
    Negative values are kept (callers decide what to do with them).
    """
    path = Path(path)
    suffix = _check_path(path, contrast)
    if suffix in METAIMAGE_SUFFIXES:
        data, affine = _read_metaimage(path, contrast)
    else:
        data, affine = _read_nifti(path, contrast)
    data = _as_3d(data, path, contrast)
    if not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise InputError("has an invalid (singular or non-finite) affine in its header", path=path,
                         contrast=contrast)
    _check_values(data, path, contrast)
    return Volume(data=np.ascontiguousarray(data, dtype=np.float32), affine=affine, path=path, contrast=contrast)


def read_grid(path: str | Path, contrast: str | None = None) -> GridInfo:
    """Read only the header of a volume: its grid shape, voxel size and affine (cheap)."""
    path = Path(path)
    suffix = _check_path(path, contrast)
    try:
        if suffix in METAIMAGE_SUFFIXES:
            import SimpleITK as sitk

            reader = sitk.ImageFileReader()
            reader.SetFileName(str(path))
            reader.ReadImageInformation()
            dim = reader.GetDimension()
            shape = tuple(int(n) for n in reader.GetSize())
            direction = np.asarray(reader.GetDirection(), dtype=np.float64).reshape(dim, dim)[:3, :3]
            affine = _itk_affine(direction, np.asarray(reader.GetSpacing())[:3], np.asarray(reader.GetOrigin())[:3])
        else:
            image = nib.load(str(path))
            shape = tuple(int(n) for n in image.shape)
            affine = np.asarray(image.affine, dtype=np.float64)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot read the image header: {reason}", path=path, contrast=contrast) from None
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    voxel_size = tuple(float(v) for v in np.linalg.norm(affine[:3, :3], axis=0))
    return GridInfo(shape=shape, voxel_size=voxel_size, affine=affine)


def _nifti_suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in NIFTI_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    raise InputError("output must be a NIfTI file ending in .nii or .nii.gz", path=path)


def _header_template(header_from: Volume | str | Path | None) -> nib.Nifti1Header | None:
    source = header_from.path if isinstance(header_from, Volume) else header_from
    if source is None or volume_suffix(source) not in NIFTI_SUFFIXES:
        return None
    try:
        header = nib.load(str(source)).header
    except Exception:
        return None
    return header.copy() if isinstance(header, nib.Nifti1Header) else None


def save_volume(
    data: np.ndarray,
    affine: np.ndarray,
    path: str | Path,
    *,
    force: bool = False,
    header_from: Volume | str | Path | None = None,
) -> Path:
    """Write ``data`` as a float32 NIfTI file, atomically, and return its path.

    Refuses to overwrite an existing file unless ``force``; creates missing parent folders.
    ``header_from`` (a Volume or NIfTI path) lends its header fields (units, description...).
    """
    path = Path(path)
    suffix = _nifti_suffix(path)
    data = np.asarray(data)
    if data.ndim != 3:
        raise ValueError(f"save_volume expects a 3D array, got shape {data.shape}")
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4):
        raise ValueError(f"save_volume expects a 4x4 affine, got shape {affine.shape}")
    if path.exists() and not force:
        raise InputError("already exists; use --force to overwrite it", path=path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder: {exc.strerror}", path=path.parent) from None
    header = _header_template(header_from)
    image = nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine, header=header)
    image.set_data_dtype(np.float32)
    image.header.set_slope_inter(1.0, 0.0)
    image.set_sform(affine, code=1)
    image.set_qform(affine, code=1)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{suffix}")
    os.close(fd)
    try:
        nib.save(image, tmp_name)
        os.replace(tmp_name, path)
    except OSError as exc:
        raise InputError(f"cannot write the file: {exc.strerror or exc}", path=path) from None
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return path
