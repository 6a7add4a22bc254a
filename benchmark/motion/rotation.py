"""Quaternion, rotation-matrix and continuous-6D helpers (numpy or torch, any batch shape).

Quaternions are ``(..., 4)`` in ``(w, x, y, z)`` order (scalar first, HumanML3D's convention).
Rotation matrices are ``(..., 3, 3)`` acting on column vectors.  The 6D representation is
HumanML3D's ``cont6d``: the first two *columns* of the rotation matrix, ``[R[:,0], R[:,1]]``.

One torch implementation serves both backends: numpy arrays go in as float64 tensors (no copy)
and come back as numpy arrays of the input dtype, torch tensors stay on their device/dtype.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np
import torch

__all__ = [
    "qmul", "qrot", "qinv", "qnormalize", "qbetween", "qfix_sign", "quat_to_matrix",
    "matrix_to_quat", "quat_to_6d", "matrix_to_6d", "rot6d_to_matrix", "rot6d_to_quat",
    "quat_about_y", "as_tensor", "like",
]


def as_tensor(x: Any) -> tuple[torch.Tensor, Any]:
    """``x`` as a torch tensor plus a token describing how to convert results back."""
    if isinstance(x, torch.Tensor):
        return x, None
    arr = np.asarray(x)
    dtype = arr.dtype if arr.dtype.kind == "f" else np.dtype(np.float64)
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float64)), dtype


def like(t: torch.Tensor, token: Any) -> Any:
    """Convert a result back to the caller's array type (see :func:`as_tensor`)."""
    if token is None:
        return t
    return t.detach().cpu().numpy().astype(token, copy=False)


def _both(fn: Callable[..., torch.Tensor]) -> Callable[..., Any]:
    """Let a torch function take numpy arrays too (returned as numpy, first arg's dtype)."""

    @functools.wraps(fn)
    def wrapper(*arrays: Any, **kw: Any) -> Any:
        if all(isinstance(a, torch.Tensor) for a in arrays):
            return fn(*arrays, **kw)
        converted = [as_tensor(a) for a in arrays]
        tensors = [c[0] for c in converted]
        ref = next((t for t in tensors if t.dtype.is_floating_point), tensors[0])
        tensors = [t.to(ref) for t in tensors]
        token = next(c[1] for c in converted if c[1] is not None)
        return like(fn(*tensors, **kw), token)

    return wrapper


@_both
def qmul(q: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Hamilton product ``q * r`` of ``(..., 4)`` quaternions (broadcasting)."""
    w1, x1, y1, z1 = q.unbind(-1)
    w2, x2, y2, z2 = r.unbind(-1)
    return torch.stack((w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
                        w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                        w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
                        w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2), dim=-1)


@_both
def qrot(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate ``(..., 3)`` vectors by unit ``(..., 4)`` quaternions (``q v q^-1``, broadcasting)."""
    qvec = q[..., 1:]
    w = q[..., :1]
    qvec, v = torch.broadcast_tensors(qvec, v)
    uv = torch.linalg.cross(qvec, v, dim=-1)
    uuv = torch.linalg.cross(qvec, uv, dim=-1)
    return v + 2 * (w * uv + uuv)


@_both
def qinv(q: torch.Tensor) -> torch.Tensor:
    """Conjugate (the inverse of a unit quaternion)."""
    return torch.cat((q[..., :1], -q[..., 1:]), dim=-1)


@_both
def qnormalize(q: torch.Tensor) -> torch.Tensor:
    return q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)


@_both
def qfix_sign(q: torch.Tensor) -> torch.Tensor:
    """Same rotation with ``w >= 0``."""
    return torch.where(q[..., :1] < 0, -q, q)


@_both
def qbetween(v0: torch.Tensor, v1: torch.Tensor) -> torch.Tensor:
    """Shortest-arc unit quaternion rotating direction ``v0`` onto ``v1`` (``(..., 3)``)."""
    v0, v1 = torch.broadcast_tensors(v0, v1)
    axis = torch.linalg.cross(v0, v1, dim=-1)
    w = (v0.norm(dim=-1, keepdim=True) * v1.norm(dim=-1, keepdim=True)
         + (v0 * v1).sum(-1, keepdim=True))
    return qnormalize(torch.cat((w, axis), dim=-1))


@_both
def quat_about_y(angle: torch.Tensor) -> torch.Tensor:
    """``(...,)`` half-angles ``a`` -> quaternions ``(cos a, 0, sin a, 0)`` (rotation by ``2a``)."""
    zero = torch.zeros_like(angle)
    return torch.stack((torch.cos(angle), zero, torch.sin(angle), zero), dim=-1)


@_both
def quat_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Unit quaternions ``(..., 4)`` -> rotation matrices ``(..., 3, 3)``."""
    w, x, y, z = q.unbind(-1)
    xx, yy, zz = x * x, y * y, z * z
    xy, xz, yz, wx, wy, wz = x * y, x * z, y * z, w * x, w * y, w * z
    rows = (1 - 2 * (yy + zz), 2 * (xy - wz), 2 * (xz + wy),
            2 * (xy + wz), 1 - 2 * (xx + zz), 2 * (yz - wx),
            2 * (xz - wy), 2 * (yz + wx), 1 - 2 * (xx + yy))
    return torch.stack(rows, dim=-1).reshape(q.shape[:-1] + (3, 3))


@_both
def matrix_to_quat(m: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``(..., 3, 3)`` -> unit quaternions ``(..., 4)`` with ``w >= 0``.

    Picks, per matrix, the numerically best of the four standard formulas (largest pivot).
    """
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    pivots = torch.stack((1 + m00 + m11 + m22, 1 + m00 - m11 - m22,
                          1 - m00 + m11 - m22, 1 - m00 - m11 + m22), dim=-1)
    s = 2 * pivots.clamp_min(1e-12).sqrt()          # s = 4 * (the pivot component)
    d21, d02, d10 = m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]
    a01, a02, a12 = m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1]
    cands = torch.stack((
        torch.stack((s[..., 0] / 4, d21 / s[..., 0], d02 / s[..., 0], d10 / s[..., 0]), -1),
        torch.stack((d21 / s[..., 1], s[..., 1] / 4, a01 / s[..., 1], a02 / s[..., 1]), -1),
        torch.stack((d02 / s[..., 2], a01 / s[..., 2], s[..., 2] / 4, a12 / s[..., 2]), -1),
        torch.stack((d10 / s[..., 3], a02 / s[..., 3], a12 / s[..., 3], s[..., 3] / 4), -1),
    ), dim=-2)                                       # (..., 4 candidates, 4)
    best = pivots.argmax(dim=-1, keepdim=True)[..., None].expand(*pivots.shape[:-1], 1, 4)
    q = cands.gather(-2, best).squeeze(-2)
    return qfix_sign(qnormalize(q))


@_both
def matrix_to_6d(m: torch.Tensor) -> torch.Tensor:
    """``(..., 3, 3)`` -> ``(..., 6)``: first column then second column (HumanML3D cont6d)."""
    return torch.cat((m[..., :, 0], m[..., :, 1]), dim=-1)


@_both
def quat_to_6d(q: torch.Tensor) -> torch.Tensor:
    """Unit quaternions ``(..., 4)`` -> continuous 6D ``(..., 6)``."""
    return matrix_to_6d(quat_to_matrix(q))


@_both
def rot6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """``(..., 6)`` -> ``(..., 3, 3)`` by Gram-Schmidt (Zhou et al. 2019); the inverse of
    :func:`matrix_to_6d` on rotation matrices."""
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = a1 / a1.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    b2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = b2 / b2.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-1)


@_both
def rot6d_to_quat(d6: torch.Tensor) -> torch.Tensor:
    return matrix_to_quat(rot6d_to_matrix(d6))
