"""Vector instructions written by hand, for sums of rows of float32 numbers.

The products of the kernels are sums of rows: ``out[o] = sum of a_k * W[j_k]``
over many ``(a_k, j_k)``, each row 16 numbers wide, say. Numba turns such a
short update into vector instructions (8 numbers at once, AVX) only if it
can tell that the row it writes and the row it reads do not overlap in
memory, which it cannot tell of two arrays passed in; it then works one
number at a time, and BLAS, multiplying every zero but 8 numbers at a time,
wins. :func:`gather16` says it directly: the sum of up to 16 columns kept
in two vector registers, four such sums side by side (a multiply-add takes
4 cycles to finish, and one can start every cycle), stored once at the end.
:func:`gather` is the same for rows of any width.

The arrays are flat float32 arrays (``a.reshape(-1)``), offsets are in
numbers. No bounds are checked: the callers compute the offsets from the
shapes. :func:`float_from_bits` is the one other instruction the kernels
need (a float made from its bits, for ``exp``).
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, register_jitable

LANES = 8  # float32 numbers in one 256-bit vector register (AVX)

_VECTOR = ir.VectorType(ir.FloatType(), LANES)


def _row_of(array, *dtypes) -> bool:
    """Is ``array`` (a Numba type) a contiguous 1-D array of one of ``dtypes``?"""
    return isinstance(array, types.Array) and array.ndim == 1 and array.layout == "C" and array.dtype in dtypes


def _float32_rows(*arrays) -> bool:
    return all(_row_of(a, types.float32) for a in arrays)


def _at(context, builder, array_type, array, offset):
    """A vector pointer to ``array[offset:offset+8]``."""
    data = context.make_array(array_type)(context, builder, array).data
    return builder.bitcast(builder.gep(data, [offset]), _VECTOR.as_pointer())


def _fma(builder, a, x, y):
    """``a * x + y`` on vectors, rounded once (one instruction)."""
    fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VECTOR, [_VECTOR] * 3),
                                         f"llvm.fma.v{LANES}f32")
    return builder.call(fma, [a, x, y])


def _splat(builder, value):
    """A vector of 8 copies of ``value``."""
    vector = ir.VectorType(value.type, LANES)
    once = builder.insert_element(ir.Constant(vector, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(once, ir.Constant(vector, ir.Undefined),
                                  ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES))


def _masked(builder, name, pointer, mask, *rest):
    """A vector load (``rest`` empty) or store (``rest`` the vector) of only the lanes ``mask`` selects."""
    bool8, int32, align = mask.type, ir.IntType(32), ir.Constant(ir.IntType(32), 4)
    if rest:  # store
        kind = ir.FunctionType(ir.VoidType(), [_VECTOR, pointer.type, int32, bool8])
        args = [*rest, pointer, align, mask]
    else:  # load: the lanes left out read as 0
        kind = ir.FunctionType(_VECTOR, [pointer.type, int32, bool8, _VECTOR])
        args = [pointer, align, mask, ir.Constant(_VECTOR, [0.0] * LANES)]
    function = cgutils.get_or_insert_function(builder.module, kind, f"llvm.masked.{name}.v{LANES}f32.p0")
    return builder.call(function, args)


def _gather(groups: int, sums: int, tail: bool):
    """The intrinsic :func:`gather16` (``groups=2, sums=4, tail=True``) or :func:`gather64` is made of.

    ``groups`` vectors of 8 columns, ``sums`` partial sums of each side by
    side, and with ``tail`` a second loop for the last few columns of a row
    (masked loads and stores).
    """
    width_of = LANES * groups

    def typing(typingctx, out, i, unit, values, rows, lo, hi, source, n, c, width):
        if not (_float32_rows(out, source) and _row_of(values, types.float32, types.uint8)
                and (rows == types.none or _row_of(rows, types.int32, types.uint16))):
            return None
        signature = types.void(out, types.intp, types.float32, values, rows, types.intp, types.intp, source,
                               types.intp, types.intp, types.intp)
        return signature, codegen

    def codegen(context, builder, sig, args):
        out_v, i_v, unit, values_v, rows_v, lo, hi, source_v, n, c, width = args
        intp = lo.type
        values_data = context.make_array(sig.args[3])(context, builder, values_v).data
        rows_data = None if sig.args[4] == types.none else context.make_array(sig.args[4])(
            context, builder, rows_v).data
        zero = ir.Constant(_VECTOR, [0.0] * LANES)
        totals = [[cgutils.alloca_once_value(builder, zero) for _ in range(groups)] for _ in range(sums)]
        lanes = ir.Constant(ir.VectorType(intp, LANES), list(range(LANES)))
        masks = [builder.icmp_signed("<", lanes, _splat(builder, builder.sub(width, ir.Constant(intp, LANES * g))))
                 for g in range(groups)]

        def load(pointer, g, masked):
            return _masked(builder, "load", pointer, masks[g]) if masked else builder.load(pointer, align=4)

        def add(k, sum_k, masked):  # sum_k += unit * values[k] * source[row_k * n + c : ...]
            if rows_data is None:
                row = builder.sub(k, lo)
            else:
                row = builder.load(builder.gep(rows_data, [k]))
                row = builder.sext(row, intp) if sig.args[4].dtype.signed else builder.zext(row, intp)
            value = builder.load(builder.gep(values_data, [k]))
            if sig.args[3].dtype == types.uint8:
                value = builder.uitofp(value, ir.FloatType())
            value = _splat(builder, builder.fmul(value, unit))
            start = builder.add(builder.mul(row, n), c)
            for g, total in enumerate(sum_k):
                at = _at(context, builder, sig.args[7], source_v, builder.add(start, ir.Constant(intp, LANES * g)))
                builder.store(_fma(builder, value, load(at, g, masked), builder.load(total)), total)

        def loops(masked):
            whole = builder.add(lo, builder.mul(builder.sdiv(builder.sub(hi, lo), ir.Constant(intp, sums)),
                                                ir.Constant(intp, sums)))
            with cgutils.for_range_slice(builder, lo, whole, ir.Constant(intp, sums)) as (k, _):
                for s, sum_k in enumerate(totals):
                    add(builder.add(k, ir.Constant(intp, s)), sum_k, masked)
            with cgutils.for_range_slice(builder, whole, hi, ir.Constant(intp, 1)) as (k, _):
                add(k, totals[0], masked)
            for g in range(groups):
                total = builder.load(totals[0][g])
                for other in totals[1:]:
                    total = builder.fadd(total, builder.load(other[g]))
                at = _at(context, builder, sig.args[0], out_v, builder.add(i_v, ir.Constant(intp, LANES * g)))
                result = builder.fadd(total, load(at, g, masked))
                if masked:
                    _masked(builder, "store", at, masks[g], result)
                else:
                    builder.store(result, at, align=4)

        if not tail:
            loops(masked=False)
            return context.get_dummy_value()
        full = builder.icmp_signed(">=", width, ir.Constant(intp, width_of))
        with builder.if_else(full, likely=True) as (whole_rows, part_rows):
            with whole_rows:
                loops(masked=False)
            with part_rows:
                loops(masked=True)
        return context.get_dummy_value()

    return intrinsic(typing)


gather16 = _gather(groups=2, sums=4, tail=True)
gather16.__doc__ = """``out[i:i+w] += sum(unit * values[k] * source[row_k*n + c : row_k*n + c + w] for k in lo..hi-1)``.

``w`` is ``min(width, 16)``: 16 columns at once (two vectors), or the
last few of a row (only those lanes are read and written). ``values``
are float32, or uint8 (raw pixels: 4 times less memory to read), each
multiplied by ``unit`` as the input step would (``unit=1`` changes
nothing). ``row_k`` is ``rows[k]`` (int32 or uint16: the pixels of a
sparse row, or the rows of a sparse column), or ``k - lo`` when ``rows``
is None (then ``values[lo:hi]`` is a dense row and this is that row
times the matrix ``source`` of ``n`` columns).
"""
gather64 = _gather(groups=8, sums=1, tail=False)  # the same for 64 columns (width >= 64): 8 vectors, one sum each


@intrinsic
def float_from_bits(typingctx, bits):
    """The float32 whose 32 bits are the int32 ``bits`` (how :func:`exp` builds a power of two)."""
    if bits != types.int32:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


@register_jitable
def gather(out, i, unit, values, rows, lo, hi, source, n, first, last):
    """``out[i+first:i+last] += sum(unit * values[k] * source[row_k, first:last] for k in lo..hi-1)``.

    ``source`` has rows of ``n`` numbers; ``row_k`` is ``rows[k]``, or
    ``k - lo`` when ``rows`` is None (then the values are a dense row and
    this is a row times the matrix ``source``). Sixty-four columns at a time
    through :func:`gather64` while they last (a wide row of ``source`` is
    read in long runs), then sixteen through :func:`gather16`.
    """
    c = first
    while last - c >= 64:
        gather64(out, i + c, unit, values, rows, lo, hi, source, n, c, last - c)
        c += 64
    while c < last:
        gather16(out, i + c, unit, values, rows, lo, hi, source, n, c, last - c)
        c += 16
