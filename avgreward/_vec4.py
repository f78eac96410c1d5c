"""Four-wide float64 vector operations for the fused loop's weight rows.

The fused loop keeps a feature's weights in one row of four doubles
(critic, then the actor's columns; see :mod:`avgreward.loop`), so that one
active feature is one 32-byte load, add and store.  Numba leaves LLVM's
superword (SLP) vectoriser off, so straight-line code on four neighbouring
doubles stays four scalar operations; these intrinsics write the vector
operation directly.  Each one is exactly the four scalar operations it
replaces, element by element (IEEE multiplication and addition, no fused
multiply-add, no fast-math), so results do not depend on using them.

All take a 1-D C-contiguous float64 array and the flat index ``i`` of the
first of four consecutive elements; like numba's own indexing they do no
bounds checking.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["add4", "axpy4", "scale4", "ordered_sum", "sum_rows4"]

_V4 = ir.VectorType(ir.DoubleType(), 4)
_I32 = ir.IntType(32)


def _is_flat_float_array(ty):
    return (isinstance(ty, types.Array) and ty.ndim == 1 and ty.layout == "C"
            and ty.dtype == types.float64)


def _pointer(context, builder, arytype, ary, index, indextype):
    """A ``<4 x double>*`` to ``ary[index]``."""
    data = context.make_array(arytype)(context, builder, ary).data
    offset = context.cast(builder, index, indextype, types.intp)
    return builder.bitcast(builder.gep(data, [offset]), _V4.as_pointer())


def _vector(builder, values):
    vector = ir.Constant(_V4, ir.Undefined)
    for k, value in enumerate(values):
        vector = builder.insert_element(vector, value, ir.Constant(_I32, k))
    return vector


@intrinsic
def add4(typingctx, a, i, x0, x1, x2, x3):
    """``a[i:i+4] += (x0, x1, x2, x3)``."""
    if not (_is_flat_float_array(a) and isinstance(i, types.Integer)):
        return None
    sig = types.void(a, i, types.float64, types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        ptr = _pointer(context, builder, signature.args[0], args[0], args[1], signature.args[1])
        row = builder.load(ptr, align=8)
        builder.store(builder.fadd(row, _vector(builder, args[2:6])), ptr, align=8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def axpy4(typingctx, a, i, b, j, s0, s1, s2, s3):
    """``a[i:i+4] += (s0, s1, s2, s3) * b[j:j+4]`` (a product, then a sum: no FMA)."""
    if not (_is_flat_float_array(a) and _is_flat_float_array(b)
            and isinstance(i, types.Integer) and isinstance(j, types.Integer)):
        return None
    sig = types.void(a, i, b, j, types.float64, types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        ptr_a = _pointer(context, builder, signature.args[0], args[0], args[1], signature.args[1])
        ptr_b = _pointer(context, builder, signature.args[2], args[2], args[3], signature.args[3])
        product = builder.fmul(_vector(builder, args[4:8]), builder.load(ptr_b, align=8))
        builder.store(builder.fadd(builder.load(ptr_a, align=8), product), ptr_a, align=8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def scale4(typingctx, a, i, s0, s1, s2, s3):
    """``a[i:i+4] *= (s0, s1, s2, s3)``; returns whether all four are now exactly zero."""
    if not (_is_flat_float_array(a) and isinstance(i, types.Integer)):
        return None
    sig = types.boolean(a, i, types.float64, types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        ptr = _pointer(context, builder, signature.args[0], args[0], args[1], signature.args[1])
        row = builder.fmul(builder.load(ptr, align=8), _vector(builder, args[2:6]))
        builder.store(row, ptr, align=8)
        zero = builder.fcmp_ordered("==", row, ir.Constant(_V4, [0.0] * 4))
        all_zero = builder.extract_element(zero, ir.Constant(_I32, 0))
        for k in range(1, 4):
            all_zero = builder.and_(all_zero, builder.extract_element(zero, ir.Constant(_I32, k)))
        return all_zero

    return sig, codegen


def _ordered_sum(context, builder, idx_t, idx_v, load):
    """Emit the package's summation order over ``idx``: four running sums over
    ``idx[m::4]``, then ``(s_0 + s_1) + (s_2 + s_3)``; ``load(i)`` gives the term of
    feature ``i`` (a double or a ``<4 x double>``)."""
    intp = context.get_value_type(types.intp)
    idx_arr = context.make_array(idx_t)(context, builder, idx_v)
    n = builder.extract_value(idx_arr.shape, 0)

    def term(j):
        i = builder.load(builder.gep(idx_arr.data, [j]))
        return load(context.cast(builder, i, idx_t.dtype, types.intp))

    zero = load.zero
    sums = [cgutils.alloca_once_value(builder, zero) for _ in range(4)]
    four = ir.Constant(intp, 4)
    with cgutils.for_range(builder, builder.udiv(n, four)) as loop:
        base = builder.mul(loop.index, four)
        for m in range(4):
            value = term(builder.add(base, ir.Constant(intp, m)))
            builder.store(builder.fadd(builder.load(sums[m]), value), sums[m])
    tail = builder.mul(builder.udiv(n, four), four)
    for m in range(3):  # at most three terms are left
        j = builder.add(tail, ir.Constant(intp, m))
        with builder.if_then(builder.icmp_signed("<", j, n)):
            builder.store(builder.fadd(builder.load(sums[m]), term(j)), sums[m])
    return builder.fadd(builder.fadd(builder.load(sums[0]), builder.load(sums[1])),
                        builder.fadd(builder.load(sums[2]), builder.load(sums[3])))


def _is_index_array(ty):
    return (isinstance(ty, types.Array) and ty.ndim == 1 and ty.layout == "C"
            and isinstance(ty.dtype, types.Integer))


@intrinsic
def ordered_sum(typingctx, values, idx, stride, offset):
    """``sum_j values.flat[idx[j] * stride + offset]`` in the package's order.

    ``values`` is any C-contiguous float64 array, read as flat: with a 2-D
    ``theta``, ``stride = theta.shape[1]`` and ``offset = b`` sum column ``b``.
    The order (four running sums over ``idx[m::4]``, then
    ``(s_0 + s_1) + (s_2 + s_3)``) is the one every sum over active features
    in the package uses; see :mod:`avgreward.critic`.
    """
    if not (isinstance(values, types.Array) and values.layout == "C"
            and values.dtype == types.float64 and _is_index_array(idx)
            and isinstance(stride, types.Integer) and isinstance(offset, types.Integer)):
        return None
    sig = types.float64(values, idx, stride, offset)

    def codegen(context, builder, signature, args):
        values_t, idx_t, stride_t, offset_t = signature.args
        data = context.make_array(values_t)(context, builder, args[0]).data
        stride_i = context.cast(builder, args[2], stride_t, types.intp)
        offset_i = context.cast(builder, args[3], offset_t, types.intp)

        def load(i):
            return builder.load(builder.gep(data, [builder.add(builder.mul(i, stride_i),
                                                              offset_i)]))

        load.zero = ir.Constant(ir.DoubleType(), 0.0)
        return _ordered_sum(context, builder, idx_t, args[1], load)

    return sig, codegen


@intrinsic
def sum_rows4(typingctx, rows, width, idx, c, out):
    """``out[c:c+4] = sum_j rows[idx[j] * width + c : ... + 4]`` in the package's order.

    Four lanes at once (one vector register per running sum); each lane is
    exactly :func:`ordered_sum` of its column.
    """
    if not (_is_flat_float_array(rows) and _is_flat_float_array(out) and _is_index_array(idx)
            and isinstance(width, types.Integer) and isinstance(c, types.Integer)):
        return None
    sig = types.void(rows, width, idx, c, out)

    def codegen(context, builder, signature, args):
        rows_t, width_t, idx_t, c_t, out_t = signature.args
        data = context.make_array(rows_t)(context, builder, args[0]).data
        width_i = context.cast(builder, args[1], width_t, types.intp)
        c_i = context.cast(builder, args[3], c_t, types.intp)

        def load(i):
            ptr = builder.gep(data, [builder.add(builder.mul(i, width_i), c_i)])
            return builder.load(builder.bitcast(ptr, _V4.as_pointer()), align=8)

        load.zero = ir.Constant(_V4, [0.0] * 4)
        total = _ordered_sum(context, builder, idx_t, args[2], load)
        builder.store(total, _pointer(context, builder, out_t, args[4], args[3], c_t), align=8)
        return context.get_dummy_value()

    return sig, codegen
