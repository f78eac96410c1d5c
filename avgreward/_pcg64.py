"""numpy's default bit generator (PCG64) stepped inside jitted code, draw for draw.

``np.random.default_rng(seed)`` draws from PCG64: a 128-bit linear
congruential state, advanced by ``state = state * M + inc`` and output
through XSL-RR (xor the halves, rotate by the top six bits); ``random()`` is
the output's top 53 bits times 2**-53.  A jitted function given a Generator
calls that through two pointers per draw; :func:`next_double` does the same
arithmetic in line, on a copy of the state in a uint64 array, so the fused
loop makes exactly the draws numpy would make.  :func:`standard_normal` is
numpy's ziggurat (``Generator.standard_normal``) on the same stream, with
numpy's tables as numba's own ``Generator`` support carries them.  :func:`load_state` and
:func:`store_state` move the state between the Generator and the array
before and after a jitted call (tests check the stream against numpy's).
"""

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic
# numpy's ziggurat tables (numpy/random/src/distributions/ziggurat_constants.h),
# the ones numba's np.random.Generator support draws normals with.
from numba.np.random._constants import fi_double, ki_double, wi_double, ziggurat_nor_inv_r, ziggurat_nor_r

__all__ = ["next_uint64", "next_double", "standard_normal", "load_state", "store_state"]

# PCG_DEFAULT_MULTIPLIER_128 of the PCG reference implementation (numpy's pcg64.h).
_MULTIPLIER = (2549297995355413924 << 64) + 4865540595714422341
_MASK64 = (1 << 64) - 1


def load_state(rng):
    """``(state_low, state_high, inc_low, inc_high)`` of ``rng``'s PCG64, as uint64.

    Raises
    ------
    TypeError
        If ``rng``'s bit generator is not PCG64 (``np.random.default_rng`` always is).
    """
    state = rng.bit_generator.state
    if state.get("bit_generator") != "PCG64":
        raise TypeError("the fused loop needs a PCG64 generator, got "
                        f"{state.get('bit_generator')!r}")
    s, inc = state["state"]["state"], state["state"]["inc"]
    return np.array([s & _MASK64, s >> 64, inc & _MASK64, inc >> 64], dtype=np.uint64)


def store_state(rng, words):
    """Set ``rng``'s PCG64 state to the one in ``words`` (from :func:`load_state`)."""
    state = rng.bit_generator.state
    state["state"] = {
        "state": int(words[0]) | (int(words[1]) << 64),
        "inc": int(words[2]) | (int(words[3]) << 64),
    }
    rng.bit_generator.state = state


def _next_uint64(context, builder, words_type, words):
    """Emit one PCG64 step on ``words`` and return its 64-bit output."""
    i64, i128 = ir.IntType(64), ir.IntType(128)
    data = context.make_array(words_type)(context, builder, words).data
    state_ptr = builder.bitcast(data, i128.as_pointer())  # words[0:2], little-endian
    inc_ptr = builder.bitcast(builder.gep(data, [ir.Constant(ir.IntType(64), 2)]),
                              i128.as_pointer())
    state = builder.add(builder.mul(builder.load(state_ptr, align=8),
                                    ir.Constant(i128, _MULTIPLIER)),
                        builder.load(inc_ptr, align=8))
    builder.store(state, state_ptr, align=8)
    # XSL-RR: rotate (high ^ low) right by the top six bits of the state.
    high = builder.trunc(builder.lshr(state, ir.Constant(i128, 64)), i64)
    xored = builder.xor(high, builder.trunc(state, i64))
    rot = builder.trunc(builder.lshr(state, ir.Constant(i128, 122)), i64)
    return builder.or_(builder.lshr(xored, rot),
                       builder.shl(xored, builder.and_(builder.neg(rot), ir.Constant(i64, 63))))


def _is_words(words):
    return isinstance(words, types.Array) and words.ndim == 1 and words.dtype == types.uint64


@intrinsic
def next_uint64(typingctx, words):
    """Advance the PCG64 state in ``words`` (uint64[4]) and return its 64-bit output."""
    if not _is_words(words):
        return None

    def codegen(context, builder, signature, args):
        return _next_uint64(context, builder, signature.args[0], args[0])

    return types.uint64(words), codegen


@intrinsic
def next_double(typingctx, words):
    """Advance the PCG64 state in ``words`` (uint64[4]) and return a uniform in [0, 1)."""
    if not _is_words(words):
        return None

    def codegen(context, builder, signature, args):
        out = _next_uint64(context, builder, signature.args[0], args[0])
        top53 = builder.uitofp(builder.lshr(out, ir.Constant(ir.IntType(64), 11)),
                               ir.DoubleType())
        return builder.fmul(top53, ir.Constant(ir.DoubleType(), 1.0 / 9007199254740992.0))

    return types.float64(words), codegen


@njit(cache=True, error_model="numpy", forceinline=True)
def standard_normal(words):
    """A standard normal draw, as ``Generator.standard_normal()`` makes it from this stream.

    numpy's ziggurat (``random_standard_normal`` in its distributions.c), line
    for line: one 64-bit draw gives the layer (8 bits), the sign (1 bit) and
    the abscissa (52 bits); about 1 % of draws need the rejection step.
    """
    while True:
        r = next_uint64(words)
        idx = np.intp(r & np.uint64(0xFF))
        r >>= np.uint64(8)
        sign = r & np.uint64(1)
        rabs = (r >> np.uint64(1)) & np.uint64(0x000FFFFFFFFFFFFF)
        x = np.float64(rabs) * wi_double[idx]
        if sign == np.uint64(1):
            x = -x
        if rabs < ki_double[idx]:
            return x
        if idx == 0:
            # The base layer's tail, beyond r, by Marsaglia's method.
            while True:
                xx = -ziggurat_nor_inv_r * np.log1p(-next_double(words))
                yy = -np.log1p(-next_double(words))
                if yy + yy > xx * xx:
                    if (rabs >> np.uint64(8)) & np.uint64(1):
                        return -(ziggurat_nor_r + xx)
                    return ziggurat_nor_r + xx
        elif ((fi_double[idx - 1] - fi_double[idx]) * next_double(words) + fi_double[idx]
              < np.exp(-0.5 * x * x)):
            return x
