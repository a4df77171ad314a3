"""Chapter 6's expanded training data: every image plus four one-pixel shifts.

The book's ``expand_mnist.py`` takes each of the 50,000 training images and adds four
copies of it displaced by one pixel, down, up, right and left, with the row or column
that enters filled with zeros: 250,000 images.  Training on them took the chapter's
ReLU network from 99.23% to 99.37%.

Memory.  :func:`expand_mnist` writes straight into one preallocated array, so its peak
is the input plus the output and nothing else: 250,000 × 784 float32 = 784 MB for the
output, plus the 157 MB float32 input.  Measured on MNIST with ``tracemalloc``: the
call allocates 786 MB at its peak (784 MB of it the result), 943 MB with the input;
the whole process, loading MNIST included, peaked at 1.06 GB resident.  float64
doubles the output (1.57 GB), which is why float32 is the default.
:class:`ExpandedImages` (``expand_mnist(X, y, on_demand=True)``) holds only the 50,000
source images and makes each mini-batch's rows when the training loop asks for them:
the same rows, bit for bit, for a fifth of the memory.
:func:`iter_expanded` yields the expanded set 10,000 source images at a time, for code
that does not need it all at once: :func:`save_expanded` uses it to store uint8 pixels
(196 MB), and ``scripts/expand_mnist.py`` writing the file peaked at 0.91 GB resident.

The book shuffled the expanded list once; nndl's ``Network.SGD`` reshuffles every
epoch, so the order here (each image followed by its four shifts) does not matter.
"""
import numpy as np

from . import backend
from .errors import ConfigError, DataError, ShapeError
from .inputs import Examples

# (name, rows moved, columns moved), in the order of the book's expand_mnist.py.
SHIFTS = (("down", 1, 0), ("up", -1, 0), ("right", 0, 1), ("left", 0, -1))


def _side(X, image_shape):
    if X.ndim != 2:
        raise ShapeError(f"X: expected (N, H·W) rows of pixels, got shape {X.shape}")
    H, W = image_shape
    if X.shape[1] != H * W:
        raise ShapeError(f"X: rows of {X.shape[1]} pixels do not make {H}x{W} images")
    return H, W


def _windows(H, W, rows, cols):
    """(to, from): the slices of an H x W image that a shift of ``rows`` down and
    ``cols`` right (negative: up/left) moves pixels to and takes them from."""
    return ((slice(max(0, rows), H - max(0, -rows)), slice(max(0, cols), W - max(0, -cols))),
            (slice(max(0, -rows), H - max(0, rows)), slice(max(0, -cols), W - max(0, cols))))


def shift(images, rows, cols, out=None):
    """(N, H, W) images moved ``rows`` down and ``cols`` right (negative: up/left), zero-filled."""
    H, W = images.shape[1:]
    out = np.empty_like(images) if out is None else out
    out[...] = 0
    (tr, tc), (fr, fc) = _windows(H, W, rows, cols)
    out[:, tr, tc] = images[:, fr, fc]
    return out


def _expand_into(images, out):
    """Fill out (N, 5, H, W) with each image and its four shifts."""
    out[:, 0] = images
    for k, (_, rows, cols) in enumerate(SHIFTS, start=1):
        shift(images, rows, cols, out=out[:, k])
    return out


def expand_mnist(X, y, dtype=np.float32, image_shape=(28, 28), on_demand=False):
    """(N, H·W) images, (N,) labels -> (5N, H·W), (5N,): each image, then its 4 shifts.

    Rows 5i .. 5i+4 hold image i, then it moved down, up, right and left by one pixel.
    The result is a new ``dtype`` array (784 MB in float32 for MNIST's 50,000 images),
    or with ``on_demand`` an :class:`ExpandedImages` that makes the rows when indexed
    (holding the N source images only).
    """
    X, y = np.asarray(X), np.asarray(y)
    H, W = _side(X, image_shape)
    if len(y) != len(X):
        raise ShapeError(f"y: {len(y)} labels for {len(X)} images")
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise ConfigError(f"dtype: expected a numpy dtype, got {dtype!r}") from None
    if on_demand:
        return ExpandedImages(X, image_shape, dtype), np.repeat(y, 5)
    out = np.empty((len(X), 5, H, W), dtype)                        # (N, 5, H, W)
    _expand_into(X.reshape(len(X), H, W), out)
    return out.reshape(5 * len(X), H * W), np.repeat(y, 5)         # (5N, H·W), (5N,)


class ExpandedImages(Examples):
    """:func:`expand_mnist`'s images, made when indexed: row 5i + s is source image i
    (s = 0), or it shifted as ``SHIFTS[s - 1]`` says (s = 1..4).

    ``x[idx]`` equals ``expand_mnist(X, y, dtype)[0][idx]`` bit for bit; only the source
    images are held (157 MB for MNIST in float32, against 784 MB for the whole set).
    Hand it to :meth:`nndl.Network.SGD` as the training images, with
    ``np.repeat(y, 5)`` as the labels (``expand_mnist(X, y, on_demand=True)`` returns
    both).

    Parameters
    ----------
    X : array (N, H·W) or (N, H, W)
        The source images.
    image_shape : (int, int)
        H, W.
    dtype : numpy dtype
        The rows' dtype (the source is converted once).
    example_shape : tuple, optional
        Each row's shape (default (H·W,)); ``reshape`` gives e.g. (1, H, W) for a
        convolutional net.
    """

    def __init__(self, X, image_shape=(28, 28), dtype=np.float32, example_shape=None):
        H, W = (int(v) for v in image_shape)
        xp = backend.xp(X)
        X = xp.asarray(X)
        if X.ndim not in (2, 3) or int(np.prod(X.shape[1:])) != H * W:
            raise ShapeError(f"X: expected (N, {H * W}) or (N, {H}, {W}) images, got shape {X.shape}")
        dtype = np.dtype(dtype)
        if not np.issubdtype(dtype, np.floating):
            raise ConfigError(f"dtype: expected a float dtype, got {dtype}")
        self.image_shape = (H, W)
        self._set(xp.ascontiguousarray(X.reshape(len(X), H, W).astype(dtype, copy=False)),  # (N, H, W)
                  dtype, (H * W,) if example_shape is None else example_shape)

    def take(self, idx):
        xp = backend.xp(self.images)
        src, kind = np.divmod(idx, 5)
        H, W = self.image_shape
        out = xp.zeros((len(idx), H, W), self.dtype)
        for s in range(5):
            sel = np.flatnonzero(kind == s)
            if not sel.size:
                continue
            (tr, tc), (fr, fc) = _windows(H, W, *((0, 0) if s == 0 else SHIFTS[s - 1][1:]))
            out[xp.asarray(sel), tr, tc] = self.images[xp.asarray(src[sel]), fr, fc]  # shift()'s copy
        return out.reshape((len(idx),) + self.shape[1:])          # (len(idx), *example_shape)

    def reshape(self, *shape):
        """The same examples, each of shape ``shape[1:]`` (``shape[0]``: len or -1)."""
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], tuple) else shape
        if not shape or shape[0] not in (len(self), -1):
            raise ShapeError(f"ExpandedImages.reshape{shape}: the first axis stays {len(self)}")
        rest = tuple(int(v) for v in shape[1:])
        if rest.count(-1) == 1:  # the one axis left to work out, as numpy's reshape does
            known = int(np.prod([v for v in rest if v != -1]))
            pixels = self.image_shape[0] * self.image_shape[1]
            rest = tuple(pixels // known if v == -1 and known and pixels % known == 0 else v
                         for v in rest)
        return self._with(self.images, self.dtype, rest)

    def astype(self, dtype):
        return self._with(self.images.astype(dtype), np.dtype(dtype), self.shape[1:])

    def to(self, xp):
        if backend.xp(self.images) is xp:
            return self
        return self._with(xp.asarray(backend.to_numpy(self.images)), self.dtype, self.shape[1:])

    def all_finite(self):
        return backend.all_finite(self.images)

    def _with(self, images, dtype, example_shape):
        """A copy holding ``images`` whose rows are ``dtype`` examples of ``example_shape``."""
        new = object.__new__(type(self))
        new.image_shape = self.image_shape
        new._set(images, dtype, example_shape)
        return new

    def _set(self, images, dtype, example_shape):
        if int(np.prod(example_shape)) != int(np.prod(self.image_shape)):
            raise ShapeError(f"cannot make {self.image_shape} images into examples of shape "
                             f"{tuple(example_shape)}")
        self.images, self.dtype = images, np.dtype(dtype)
        self.shape = (5 * len(images),) + tuple(int(v) for v in example_shape)  # 5 per source image

    def __repr__(self):
        return (f"ExpandedImages({len(self) // 5} source images -> {len(self)} examples of "
                f"shape {self.shape[1:]}, {self.dtype})")


def iter_expanded(X, y, chunk=10_000, dtype=np.float32, image_shape=(28, 28)):
    """Yield the expanded set of :func:`expand_mnist` in pieces of 5·chunk images."""
    X, y = np.asarray(X), np.asarray(y)
    _side(X, image_shape)
    if int(chunk) < 1:
        raise ConfigError(f"chunk: expected a positive number of images, got {chunk}")
    for k in range(0, len(X), int(chunk)):
        yield expand_mnist(X[k:k + chunk], y[k:k + chunk], dtype, image_shape)


# -- on disk -------------------------------------------------------------------------------
_KEYS = ("training", "validation", "test")


def save_expanded(path, training_data, validation_data, test_data, chunk=10_000):
    """Write the expanded training set and the other two sets to an ``.npz`` file.

    Pixels are stored as uint8 (x·255, exact for MNIST's k/255 values): 196 MB for the
    expanded set.  The training set is expanded ``chunk`` images at a time.
    """
    from .io import atomic_write

    def to_u8(X):
        X = np.asarray(X)
        if X.size and (X.min() < 0 or X.max() > 1):
            raise DataError("save_expanded: pixels must lie in [0, 1]")
        return np.rint(X * 255).astype(np.uint8) if X.dtype != np.uint8 else X

    Xt, yt = training_data
    pieces = [(to_u8(Xc), yc) for Xc, yc in iter_expanded(Xt, yt, chunk, np.float32)]
    arrays = {"training_x": np.concatenate([p[0] for p in pieces]),
              "training_y": np.concatenate([p[1] for p in pieces])}
    del pieces
    for key, (X, y) in zip(_KEYS[1:], (validation_data, test_data)):
        arrays[f"{key}_x"], arrays[f"{key}_y"] = to_u8(X), np.asarray(y)
    with atomic_write(path) as f:
        np.savez(f, **arrays)
    return path


def load_expanded(path, dtype=np.float32):
    """Read a file written by :func:`save_expanded`: [training, validation, test], each (X, y)."""
    dtype = np.dtype(dtype)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = []
            for key in _KEYS:
                u8, y = z[f"{key}_x"], z[f"{key}_y"]
                X = np.empty(u8.shape, dtype)
                for k in range(0, len(u8), 10_000):  # convert in pieces: no float64 temporary
                    X[k:k + 10_000] = u8[k:k + 10_000]
                    X[k:k + 10_000] /= 255
                data.append((X, y.astype(np.int64)))
    except (OSError, KeyError, ValueError) as e:
        raise DataError(f"{path}: not an expanded-MNIST file from scripts/expand_mnist.py ({e})") from None
    return data
