"""Systolic arrays: a register-level simulator, its closed-form cycle count, and shape efficiency.

A systolic array is a ``rows x cols`` grid of processing elements (PEs). Each cycle every PE does
at most one multiply-accumulate (MAC) and hands its operands to its right and lower neighbours.
One operand is *stationary* (held in the PEs for a whole tile); the others *stream* through.

Dataflows and folding (``C = A @ B`` with ``A`` of shape (M, K), ``B`` of shape (K, N)):

=====  =====================  ==============  ==============  ===========  ================
name   stationary operand      array rows      array cols      streams      folds
=====  =====================  ==============  ==============  ===========  ================
'ws'   B (weights)             K               N               M (A rows)   ceil(K/R)*ceil(N/C)
'is'   A (inputs), transposed  K               M               N (B cols)   ceil(K/R)*ceil(M/C)
'os'   C (outputs)             M               N               K (A and B)  ceil(M/R)*ceil(N/C)
=====  =====================  ==============  ==============  ===========  ================

A matrix larger than the array is cut into array-sized tiles ("folds") along the two dimensions
that map onto the array; the streamed dimension is never cut. Folds run one after another; for
'ws' and 'is' the K-folds of one output tile add into accumulators below the array.

Cycle convention (the one :func:`cycles` counts and :func:`simulate` measures): a fold runs from
the cycle its first operand enters the array to the cycle its last MAC completes. That includes
loading the stationary tile for 'ws' and 'is' (one tile row per cycle, shifted in from the top,
so a tile using ``kr`` rows takes ``kr`` cycles) and the fill and drain of the skewed wavefront.
It excludes moving finished results out of the array (partial sums leaving the bottom edge,
output-stationary accumulators being read out). Without double buffering each fold pays its own
load, fill and drain. With double buffering (:func:`cycles_double_buffered`) the next tile is
shifted into shadow registers while the current fold computes, and swapped in once the current
fold's last MAC is done.

Taught in: "TPUs and systolic arrays".
"""

from __future__ import annotations

import dataclasses

import numpy as np

from accelbook import specs
from accelbook.checks import boolean, positive_int

DATAFLOWS: dict[str, str] = {
    "ws": "weight-stationary",
    "os": "output-stationary",
    "is": "input-stationary",
}
"""The dataflows :func:`simulate` and :func:`cycles` accept, with their long names."""

MAPPINGS: dict[str, tuple[str, str, str]] = {
    "ws": ("K", "N", "M"),
    "os": ("M", "N", "K"),
    "is": ("K", "M", "N"),
}
"""Per dataflow: (dimension on the array's rows, dimension on its columns, streamed dimension)."""


# ---------------------------------------------------------------------------------------------
# records


@dataclasses.dataclass(frozen=True)
class Fold:
    """One array-sized tile of the problem, as :func:`simulate` ran it.

    ``row_span`` and ``col_span`` are the half-open index ranges of the dimensions mapped onto
    the array's rows and columns (see :data:`MAPPINGS`). Cycle numbers are global:
    ``load_start`` is the first cycle of loading the stationary tile (equal to ``stream_start``
    for 'os', which loads nothing), ``stream_start`` the cycle the first streamed operand enters
    the array, ``end`` one past the cycle of the fold's last MAC. ``macs`` counts its useful MACs.
    """

    index: int
    row_span: tuple[int, int]
    col_span: tuple[int, int]
    load_start: int
    stream_start: int
    end: int
    macs: int

    @property
    def rows_used(self) -> int:
        """Array rows this fold occupies (``row_span`` length)."""
        return self.row_span[1] - self.row_span[0]

    @property
    def cols_used(self) -> int:
        """Array columns this fold occupies (``col_span`` length)."""
        return self.col_span[1] - self.col_span[0]


@dataclasses.dataclass(frozen=True)
class SystolicRun:
    """The record of one :func:`simulate` call.

    ``C`` is the product (float64). ``cycles`` is the total cycle count under the module's
    convention. ``activity[t, r, c]`` is True when PE (r, c) did a useful MAC in cycle ``t``
    (shape (cycles, rows, cols)). ``utilization = macs / (rows * cols * cycles)`` with
    ``macs = M * N * K``. ``folds`` lists the tiles in the order they ran; ``mapping`` is the
    (rows, cols, streamed) dimension names of the dataflow; ``pipelined`` says whether
    consecutive folds overlapped in the array (:func:`cycles_pipelined`).
    """

    C: np.ndarray
    cycles: int
    activity: np.ndarray
    utilization: float
    macs: int
    folds: tuple[Fold, ...]
    dataflow: str
    rows: int
    cols: int
    double_buffer: bool
    mapping: tuple[str, str, str]
    pipelined: bool = False


# ---------------------------------------------------------------------------------------------
# validation


def _check_dataflow(dataflow) -> str:
    if not isinstance(dataflow, str) or dataflow not in DATAFLOWS:
        allowed = ", ".join(f"{k!r} ({v})" for k, v in DATAFLOWS.items())
        raise ValueError(f"dataflow={dataflow!r} is not a known dataflow; allowed: {allowed}")
    return dataflow


def _check_matrix(name: str, x) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"{name} has shape {arr.shape} (ndim={arr.ndim}); "
                         f"{name} must be a 2-D matrix")
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.integer)
                                   or np.issubdtype(arr.dtype, np.floating)
                                   or np.issubdtype(arr.dtype, np.bool_)):
        raise ValueError(f"{name} has dtype {arr.dtype}; "
                         f"{name} must hold real numbers (int or float)")
    if 0 in arr.shape:
        raise ValueError(f"{name} has shape {arr.shape}; every dimension must be >= 1")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values (inf or nan); {name} must be finite")
    return arr


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _sizes(M, N, K, rows, cols, dataflow):
    return (positive_int("M", M), positive_int("N", N), positive_int("K", K),
            positive_int("rows", rows), positive_int("cols", cols), _check_dataflow(dataflow))


# ---------------------------------------------------------------------------------------------
# closed forms


def cycles(M: int, N: int, K: int, rows: int, cols: int, dataflow: str, *,
           pipelined: bool = False) -> int:
    """Cycles to compute an (M, K) @ (K, N) product on a ``rows x cols`` array, one fold at a time.

    ``pipelined=True`` counts the pipelined-fold machine instead (:func:`cycles_pipelined`: the
    next fold's wavefront follows the current one through the array, so fill and drain are paid
    once per matmul). The default, ``False``, is the per-fold count below, the pessimistic bound.

    The model (chapter "TPUs and systolic arrays"): the problem is cut into folds (tiles of the
    two dimensions that map onto the array, see :data:`MAPPINGS`); each fold pays its own load,
    fill and drain, and the next fold starts only after the previous fold's last MAC. A fold is
    counted from the cycle its first operand enters the array to the cycle its last MAC
    completes. With ``R = rows`` and ``C = cols``:

    * 'ws' (weight-stationary; K on rows, N on columns, M streams). A fold holds a ``kr x nc``
      tile of B. Loading it row by row from the top takes ``kr`` cycles; row ``m`` of A then
      enters the left edge, skewed one cycle per array row, so PE (r, c) multiplies A[m, r] at
      ``kr + m + r + c``. The last MAC (m = M-1, r = kr-1, c = nc-1) ends the fold::

          fold  = kr + (M + kr + nc - 2) = 2*kr + nc + M - 2
          total = sum over folds = 2*K*ceil(N/C) + N*ceil(K/R) + ceil(K/R)*ceil(N/C)*(M - 2)

    * 'is' (input-stationary; K on rows, M on columns, N streams): the same machine holding a
      ``kr x mc`` tile of A transposed while the columns of B stream::

          fold  = 2*kr + mc + N - 2
          total = 2*K*ceil(M/C) + M*ceil(K/R) + ceil(K/R)*ceil(M/C)*(N - 2)

    * 'os' (output-stationary; M on rows, N on columns, K streams): nothing is preloaded. A
      enters from the left and B from the top, both skewed; PE (r, c) does its k-th MAC at
      ``k + r + c``; each PE keeps one element of C::

          fold  = K + mr + nc - 2
          total = ceil(M/R)*ceil(N/C)*(K - 2) + M*ceil(N/C) + N*ceil(M/R)

    Edge folds use their true tile size (``kr = K mod R`` etc.), which is why the totals are sums
    of the tile sizes (``sum kr = K`` per column of folds) rather than products with ``R``.
    SCALE-Sim v2 (Samajdar et al.) instead charges every fold as a full ``R x C`` tile
    (``2R + C + T - 2`` cycles for 'ws'/'is', ``R + C + T - 2`` for 'os', T the streamed length);
    its count equals this function applied to :func:`padded_shape`.
    The arithmetic is O(1) for any size.

    Worked example: M = N = K = 256 on a 128 x 128 weight-stationary array has 2 x 2 folds of
    2*128 + 128 + 256 - 2 = 638 cycles each, 2552 cycles in all, so utilization is
    256**3 / (128*128*2552) = 40 %: per fold, 254 of the 638 cycles are load, fill and drain.

    >>> cycles(256, 256, 256, 128, 128, "ws")
    2552
    >>> cycles(2, 2, 2, 2, 2, "os")
    4
    """
    if boolean("pipelined", pipelined):
        return cycles_pipelined(M, N, K, rows, cols, dataflow)
    M, N, K, R, C, df = _sizes(M, N, K, rows, cols, dataflow)
    if df == "os":
        fm, fn = _ceil_div(M, R), _ceil_div(N, C)
        return fm * fn * (K - 2) + M * fn + N * fm
    P, Q = (N, M) if df == "ws" else (M, N)   # P: on the columns, Q: streamed
    fk, fp = _ceil_div(K, R), _ceil_div(P, C)
    return 2 * K * fp + P * fk + fk * fp * (Q - 2)


def cycles_double_buffered(M: int, N: int, K: int, rows: int, cols: int, dataflow: str) -> int:
    """Cycles for the same product when the next tile loads while the current fold computes.

    The model (chapter "TPUs and systolic arrays"): each PE has a shadow register for the
    stationary operand, as production MXUs do. The next fold's tile is shifted into the shadow
    registers (one row per cycle from the top, ``kr`` cycles) as soon as the current tile has
    been swapped in, i.e. from the current fold's first streaming cycle; the swap to the next tile
    happens when both the current fold's last MAC is done and the shadow load is complete. Only
    the first fold's load is exposed. Fill and drain are still paid per fold (the swap is global,
    so folds do not overlap). With ``compute(fold) = Q + kr + nc - 2`` (Q the streamed length):

    * 'ws' (K on rows, N on columns, Q = M) and 'is' (K on rows, M on columns, Q = N), with P
      the dimension on the columns::

          total = min(K, R) + sum over folds of compute + stalls
                = min(K, R) + ceil(K/R)*ceil(P/C)*(Q - 2) + K*ceil(P/C) + P*ceil(K/R) + stalls

      Folds run K-innermost. A load (at most ``R`` rows) always hides under a full-height fold's
      compute (``Q + R + nc - 2 >= R`` cycles); a load can only stick out after the last, short
      K tile of a column of folds (``r_last = K - (ceil(K/R) - 1)*R`` rows), when the next
      column of folds starts with a full tile::

          stalls = (ceil(P/C) - 1) * max(0, R - (Q + r_last + C - 2))   if ceil(K/R) >= 2, else 0

      Stalls need a tall array (``R > Q + r_last + C - 2``); on square arrays they never occur.
      Hardware can go further and overlap one fold's drain with the next fold's fill; this model
      swaps tiles globally, so folds never overlap and that saving is not counted.

    * 'os' has no stationary operand to load: the count equals :func:`cycles`.

    Worked example: M = N = K = 256 on 128 x 128, 'ws': 128 + 4*254 + 512 + 512 = 2168 cycles
    (2552 without double buffering), utilization 47 %. A tall 4 x 1 array with M=1, N=2, K=5 runs
    folds of 4, 1, 4, 1 rows; the 4-cycle load after the 1-row fold hides under only 1 cycle of
    compute, stalling 3 cycles: total 17 (20 without double buffering).

    >>> cycles_double_buffered(256, 256, 256, 128, 128, "ws")
    2168
    >>> cycles_double_buffered(1, 2, 5, 4, 1, "ws")
    17
    """
    M, N, K, R, C, df = _sizes(M, N, K, rows, cols, dataflow)
    if df == "os":
        return cycles(M, N, K, R, C, df)
    P, Q = (N, M) if df == "ws" else (M, N)
    fk, fp = _ceil_div(K, R), _ceil_div(P, C)
    total = min(K, R) + fk * fp * (Q - 2) + K * fp + P * fk
    if fk >= 2:
        r_last = K - (fk - 1) * R
        total += (fp - 1) * max(0, R - (Q + r_last + C - 2))
    return total


def cycles_pipelined(M: int, N: int, K: int, rows: int, cols: int, dataflow: str) -> int:
    """Cycles for the product when consecutive folds overlap in the array (pipelined folds).

    The model (chapter "TPUs and systolic arrays"). Every PE has an active and a shadow register
    for the stationary operand. In the weight-stationary array ('ws': K on rows, N on columns,
    M streams) fold f streams from cycle ``s_f``: row m of A enters array row r at ``s_f + m + r``,
    so PE (r, c) works on fold f in cycles ``s_f + r + c`` to ``s_f + r + c + M - 1``.

    * The swap to the next tile travels with the wavefront: a PE takes its shadow weight into
      use when the first row of the next fold's activations reaches it, at ``s_{f+1} + r + c``
      (TPU v1's weights "take effect with the advancing wave alongside the first data of a new
      block", Jouppi et al. 2017). So two folds can be in the array at once, the earlier one
      draining from the bottom right while the later one fills from the top left.
    * The next tile is loaded into column c's shadow registers right behind that swap: its rows
      enter at the top from cycle ``s_f + c`` and shift down one row per cycle, and row r's shadow
      register is first written in cycle ``s_f + r + c``, the cycle fold f's swap passes it. After
      ``kr`` cycles (the next tile's height) the column holds the whole tile.
    * Fold f + 1 may start streaming once the left edge is free (``s_f + M``) and its tile is in
      (``s_f + kr_{f+1}``)::

          s_0     = kr_0                                  (the first load is exposed)
          s_{f+1} = s_f + max(M, kr_{f+1})                (steady state: max(M, k_r) per fold)
          end_f   = s_f + M + kr_f + nc_f - 2             (fold f's last MAC, plus one)
          total   = max over folds of end_f

      With full tiles that is ``R + (F - 1) * max(M, R) + M + R + C - 2`` for F folds: the fill
      and drain (``R + C - 2``) and the first load are paid once per matmul, and each further
      fold costs ``max(M, R)``: M cycles of streaming, or R cycles of loading when M < R.

    * 'is' is the same machine with M on the columns and N streaming (replace M by N above).
    * 'os': nothing is loaded; a PE hands its finished accumulator to a shadow register (read
      out of the array, not counted, as in :func:`cycles`) when the next fold's first operands
      reach it, so the next fold's operands enter as soon as the edges are free:
      ``s_f = f * K``, ``end_f = s_f + K + mr_f + nc_f - 2``, ``total = max end_f``.

    Folds run in the order of :func:`simulate` (K innermost for 'ws'/'is'; output tiles row by
    row for 'os'); edge folds use their true tile sizes. The maximum is taken over the last
    fold of each kind of tile (full, short in K, narrow in N, both), so the arithmetic is O(1).
    The count never exceeds :func:`cycles_double_buffered`, and utilization tends to the shape
    efficiency as the streamed dimension grows.

    Worked example: M = N = K = 256 on 128 x 128, 'ws': 4 full folds, so
    128 + 3 * 256 + 256 + 128 + 128 - 2 = 1406 cycles (2168 double-buffered, 2552 one fold at
    a time), utilization 73 %. On a 2 x 2 array, M = N = 2 and K = 4 run two folds:
    2 + max(2, 2) + 2 + 2 + 2 - 2 = 8 cycles (12 one fold at a time).

    >>> cycles_pipelined(256, 256, 256, 128, 128, "ws")
    1406
    >>> cycles_pipelined(2, 2, 4, 2, 2, "ws")
    8
    """
    M, N, K, R, C, df = _sizes(M, N, K, rows, cols, dataflow)
    if df == "os":
        fm, fn = _ceil_div(M, R), _ceil_div(N, C)
        m_last, n_last = M - (fm - 1) * R, N - (fn - 1) * C
        ends = []
        for i, mr in ((fm - 2, R), (fm - 1, m_last)):        # last fold of each kind of tile
            for j, nc in ((fn - 2, C), (fn - 1, n_last)):
                if i >= 0 and j >= 0:
                    ends.append((i * fn + j) * K + K + mr + nc - 2)
        return max(ends)
    P, Q = (N, M) if df == "ws" else (M, N)   # P: on the columns, Q: streamed
    fk, fp = _ceil_div(K, R), _ceil_div(P, C)
    r_last, c_last = K - (fk - 1) * R, P - (fp - 1) * C
    kr0 = R if fk > 1 else K

    def start(f: int) -> int:                 # s_f = kr_0 + sum over 1..f of max(Q, kr_h)
        n_short = (f + 1) // fk               # folds 0..f that are the last (short) K tile
        return kr0 - max(Q, kr0) + (f + 1 - n_short) * max(Q, R) + n_short * max(Q, r_last)

    ends = []
    for i, kr in ((fk - 2, R), (fk - 1, r_last)):
        for j, nc in ((fp - 2, C), (fp - 1, c_last)):
            if i >= 0 and j >= 0:
                ends.append(start(j * fk + i) + Q + kr + nc - 2)
    return max(ends)


# ---------------------------------------------------------------------------------------------
# shape efficiency


def padded_shape(M: int, N: int, K: int, rows: int = 128, cols: int = 128,
                 dataflow: str = "ws") -> tuple[int, int, int]:
    """(M, N, K) with the dimensions that map onto the array rounded up to whole array tiles.

    The model (chapter "TPUs and systolic arrays"): a fold that uses only part of the array
    still occupies all of it, so the work done is that of the padded problem. For the TPU's
    weight-stationary MXU (``dataflow='ws'``, the default) K maps onto the array's rows and N
    onto its columns, so K is padded to a multiple of ``rows`` and N to a multiple of ``cols``;
    M streams through and is not padded. For 'is' K -> rows and M -> cols; for 'os' M -> rows
    and N -> cols (see :data:`MAPPINGS`).

    >>> padded_shape(100, 200, 300, 128, 128)
    (100, 256, 384)
    """
    M, N, K, R, C, df = _sizes(M, N, K, rows, cols, dataflow)
    up = {"M": M, "N": N, "K": K}
    row_dim, col_dim, _ = MAPPINGS[df]
    up[row_dim] = _ceil_div(up[row_dim], R) * R
    up[col_dim] = _ceil_div(up[col_dim], C) * C
    return up["M"], up["N"], up["K"]


def shape_efficiency(M: int, N: int, K: int, rows: int = 128, cols: int = 128,
                     dataflow: str = "ws") -> float:
    """Useful work / work done once the array-mapped dimensions are padded to whole tiles.

    The model (chapter "TPUs and systolic arrays"): ``M*N*K / (M'*N'*K')`` with
    ``(M', N', K') = padded_shape(...)``. For the weight-stationary MXU this is
    ``(K / roundup(K, rows)) * (N / roundup(N, cols))``: M streams and costs nothing to pad.
    It is an upper bound on utilization; fill and drain (see :func:`cycles`) come on top.

    >>> shape_efficiency(1024, 129, 128)   # N = 129 needs two 128-wide tiles
    0.50390625
    """
    Mp, Np, Kp = padded_shape(M, N, K, rows, cols, dataflow)
    return (int(M) * int(N) * int(K)) / (Mp * Np * Kp)


# ---------------------------------------------------------------------------------------------
# the simulator


SIMULATE_LIMIT = 5 * 10**7
"""The most PE-cycles (cycles x rows x cols) :func:`simulate` runs: it keeps a per-cycle activity
log of the whole array, so a larger run is a ``ValueError`` before anything is allocated."""


def simulate(A, B, rows: int, cols: int, dataflow: str, *, double_buffer: bool = False,
             pipelined: bool = False, max_cycles: int = 1_000_000) -> SystolicRun:
    """Simulate ``A @ B`` cycle by cycle on a ``rows x cols`` systolic array; return the record.

    The model (chapter "TPUs and systolic arrays"). Every PE has real registers that are
    updated once per cycle for the whole array at once; operands move one PE per cycle and the
    product is built only from the MACs the PEs perform (float64 accumulation):

    * 'ws' weight-stationary. Per fold a ``kr x nc`` tile of B (K on rows, N on columns) is
      shifted into the PEs' weight registers from the top edge, one row per cycle (``kr``
      cycles). Row m of A then enters the left edge, element A[m, k0 + r] into array row r at
      stream step ``m + r`` (the skew), and moves one PE to the right per cycle. PE (r, c)
      multiplies the activation passing through by its weight and adds the partial sum arriving
      from above; partial sums move down one PE per cycle and leave the bottom edge as
      C[m, n0 + c], where the K-folds of the same output tile are added together.
    * 'is' input-stationary: the same machine with A's tile held (transposed: PE (r, c) holds
      A[m0 + c, k0 + r]; K on rows, M on columns) while the columns of B stream in from the
      left (B[k0 + r, n] into row r at step ``n + r``); column c's partial sums are C[m0 + c, n].
    * 'os' output-stationary: PE (r, c) accumulates C[m0 + r, n0 + c] (M on rows, N on columns).
      A[m0 + r, k] enters row r from the left at step ``k + r`` and moves right; B[k, n0 + c]
      enters column c from the top at step ``k + c`` and moves down. When a fold's last MAC is
      done its accumulators are copied out (not counted) and the next fold starts.

    Folds: a partial tile occupies the top-left corner of the array. 'ws' and 'is' run their
    folds K-innermost (all K-folds of one column block, then the next block); 'os' runs its
    output tiles row by row. Operands carry tags (their fold and index), as hardware carries
    valid bits: a PE fires only when its streamed operand belongs to the fold whose stationary
    value it holds ('ws', 'is'), or when A[m, k] and B[k, n] of the same fold meet ('os').
    ``activity`` records exactly those MACs.

    ``double_buffer=True`` gives the PEs shadow registers for the stationary operand ('ws',
    'is'): the next tile shifts in while the current fold computes and is swapped in once the
    current fold's last MAC is done and the load is complete. For 'os' it changes nothing.

    ``pipelined=True`` runs the pipelined-fold machine of :func:`cycles_pipelined` in ONE array
    with shared registers: the next tile shifts into the shadow registers right behind the
    current fold's wavefront, a PE swaps it in when the next fold's first operand reaches it, and
    a controller starts the next fold's stream as soon as the left edge is free and the first
    column holds the next tile, so consecutive folds are in the array at the same time ('os':
    a PE hands its finished output to a shadow register when the next fold's operands arrive).
    The run then has shadow registers by definition: its ``double_buffer`` is True.

    The cycle count is measured, not computed: it must equal :func:`cycles` (or
    :func:`cycles_double_buffered`, :func:`cycles_pipelined`), which the tests check over many
    shapes. The simulator is
    meant for teaching sizes (the loop runs once per cycle); it raises ValueError if the run
    would exceed ``max_cycles`` cycles.

    >>> run = simulate([[1, 2], [3, 4]], [[5, 6], [7, 8]], 2, 2, "os")
    >>> run.C.tolist(), run.cycles
    ([[19.0, 22.0], [43.0, 50.0]], 4)
    """
    R = positive_int("rows", rows)
    C = positive_int("cols", cols)
    df = _check_dataflow(dataflow)
    if not isinstance(double_buffer, (bool, np.bool_)):
        raise ValueError(f"double_buffer={double_buffer!r} is not allowed; "
                         f"it must be True or False")
    pipelined = boolean("pipelined", pipelined)
    max_cycles = positive_int("max_cycles", max_cycles)
    A = _check_matrix("A", A)
    B = _check_matrix("B", B)
    M, K = A.shape
    if B.shape[0] != K:
        raise ValueError(f"A has shape {A.shape} and B has shape {B.shape}; A's columns (K={K}) "
                         f"must equal B's rows ({B.shape[0]})")
    N = B.shape[1]
    expected = (cycles_pipelined if pipelined else cycles_double_buffered if double_buffer and df != "os"
                else cycles)(M, N, K, R, C, df)
    if expected > max_cycles:
        raise _too_long(max_cycles)
    # the activity log holds every PE in every cycle of every fold (a fold lasts about R + C + its stream)
    folds = _ceil_div(max(M, K), R) * _ceil_div(max(M, N), C)
    work = max(expected, folds * (R + C + max(M, N, K))) * R * C
    if work > SIMULATE_LIMIT:
        raise ValueError(f"rows={R}, cols={C}, A {A.shape} @ B {B.shape}: about {work:.3g} PE-cycles to simulate "
                         f"and log, above the limit of {SIMULATE_LIMIT:.3g} (use cycles() for big problems)")

    if pipelined and cycles_pipelined(M, N, K, R, C, df) > max_cycles:
        raise _too_long(max_cycles)
    if pipelined and df == "os":
        out, n_cycles, activity, folds = _run_output_stationary_pipelined(A, B, R, C, max_cycles)
    elif pipelined:
        X, S = (A, B) if df == "ws" else (B.T, A.T)
        out, n_cycles, activity, folds = _run_stationary_pipelined(X, S, R, C, max_cycles)
        out = out if df == "ws" else out.T.copy()
    elif df == "os":
        out, n_cycles, activity, folds = _run_output_stationary(A, B, R, C, max_cycles)
    elif df == "ws":
        out, n_cycles, activity, folds = _run_stationary(A, B, R, C, bool(double_buffer),
                                                         max_cycles)
    else:  # 'is': hold A^T (K x M), stream the columns of B, collect C^T
        outT, n_cycles, activity, folds = _run_stationary(B.T, A.T, R, C, bool(double_buffer),
                                                          max_cycles)
        out = outT.T.copy()

    macs = M * N * K
    out.setflags(write=False)
    activity.setflags(write=False)
    return SystolicRun(C=out, cycles=n_cycles, activity=activity,
                       utilization=macs / (R * C * n_cycles), macs=macs, folds=tuple(folds),
                       dataflow=df, rows=R, cols=C, double_buffer=bool(double_buffer) or pipelined,
                       mapping=MAPPINGS[df], pipelined=pipelined)


def _too_long(max_cycles: int):
    return ValueError(f"the simulation exceeded max_cycles={max_cycles}; use smaller matrices, a "
                      f"larger array, or raise max_cycles (cycles() gives the count directly)")


# How the simulator is organised. Folds never share a value: every operand and partial sum is
# tagged with its fold, a PE fires only on a matching pair, and the next fold's streamed
# operands enter after the current fold's last MAC (the controller swaps the stationary tile
# only then). So each fold's register-level run is the same whatever ran before it, shifted in
# time. The simulator therefore runs all folds at once, each in its own copy of the array (a
# leading fold axis on every register), from the cycle its streamed operands start entering;
# each cycle still moves every value one PE on and fires every PE. The controller then places
# the folds on the global timeline from what the runs measured (the cycle of each fold's last
# MAC) with the rules in :func:`simulate`: a load takes ``kr`` cycles and starts when the
# shadow registers are free (single buffering: also after the current fold's last MAC), and
# a fold streams once its tile is loaded and the previous fold's last MAC is done.


def _fold_ends(log: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Per fold, the local cycle after its last MAC, from a (cycles, folds, R, C) activity log."""
    done = np.cumsum(log.reshape(log.shape[0], log.shape[1], -1).sum(axis=2), axis=0)
    if log.shape[0] == 0 or not np.array_equal(done[-1], expected):
        raise RuntimeError("internal error: the folds did not perform their MACs")
    return np.argmax(done == expected[None, :], axis=0) + 1


def _place(spans, log: np.ndarray, starts, n_cycles: int, R: int, C: int) -> np.ndarray:
    """Global activity: fold f's local cycles [0, spans[f]) of ``log`` from cycle starts[f]."""
    if len(spans) == 1 and starts[0] == 0 and spans[0] == n_cycles:
        return log[:n_cycles, 0].copy()
    activity = np.zeros((n_cycles, R, C), dtype=bool)
    for f, (s, n) in enumerate(zip(starts, spans)):
        activity[s:s + n] = log[:n, f]
    return activity


def _finish_pipelined(out, log, plan, load_starts, starts, ends, expected, R: int, C: int, max_cycles: int):
    """The common end of both pipelined runs: check the cycle budget, place the logged
    (cycle, PEs firing) pairs into the activity array and describe each fold of ``plan``
    (row span, column span) with its load, stream and end cycles."""
    n_cycles = int(ends.max())
    if n_cycles > max_cycles:
        raise _too_long(max_cycles)
    activity = np.zeros((n_cycles, R, C), dtype=bool)
    for tt, fire in log:
        activity[tt] = fire
    folds = [Fold(index=f, row_span=(r0, r1), col_span=(c0, c1), load_start=int(load_starts[f]),
                  stream_start=int(starts[f]), end=int(ends[f]), macs=int(expected[f]))
             for f, (r0, r1, c0, c1) in enumerate(plan)]
    return out, n_cycles, activity, folds


def _run_stationary(X: np.ndarray, S: np.ndarray, R: int, C: int, double_buffer: bool,
                    max_cycles: int):
    """Stationary-operand array: S (Kd x P) held in the PEs, rows of X (Q x Kd) streamed.

    Returns Y = X @ S, the cycle count, the activity array and the fold records.
    """
    Q, Kd = X.shape
    P = S.shape[1]
    fk, fp = _ceil_div(Kd, R), _ceil_div(P, C)
    F = fk * fp
    if F * Q > max_cycles:             # every fold streams Q operands through PE (0, 0)
        raise _too_long(max_cycles)
    rows_idx = np.arange(R)

    # fold plan: columns of folds outer, K innermost (the K-folds of one output tile in a row)
    plan = []
    for j in range(fp):
        for i in range(fk):
            k0, p0 = i * R, j * C
            plan.append((k0, min(Kd, k0 + R), p0, min(P, p0 + C)))
    k0s = np.array([k0 for (k0, _, _, _) in plan])
    krs = np.array([k1 - k0 for (k0, k1, _, _) in plan])
    ncs = np.array([p1 - p0 for (_, _, p0, p1) in plan])
    fold_ids = np.arange(F, dtype=np.float64)
    expected = krs * ncs * Q

    # the skewed feed of every fold's left edge, step by step: (step, fold, value/fold/index, R);
    # row r receives X[q, k0 + r] at step q + r. After the last step the edge feeds nothing
    # (value 0, tags -1) for as long as the run needs: C - 1 steps until the last operand has
    # crossed the array.
    steps = Q + int(krs.max()) - 1
    n_run = steps + C - 1
    q = np.arange(n_run)[:, None, None] - rows_idx[None, None, :]          # (step, 1, R)
    ok = (q >= 0) & (q < Q) & (rows_idx[None, None, :] < krs[None, :, None])
    kc = np.minimum(k0s[:, None] + rows_idx[None, :], Kd - 1)[None]        # (1, fold, R)
    feed = np.empty((n_run, F, 3, R))
    feed[:, :, 0] = np.where(ok, X[np.minimum(np.maximum(q, 0), Q - 1), kc], 0.0)
    feed[:, :, 1] = np.where(ok, fold_ids[None, :, None], -1.0)
    feed[:, :, 2] = np.where(ok, q, -1.0)

    # Load: every fold's tile shifts into its weight registers from the top, one row per cycle,
    # bottom row first; plane 1 is the register's valid bit. A tile of kr < R rows is preceded
    # by R - kr empty rows, which leaves the same registers as shifting only its kr rows in.
    tiles = np.zeros((F, 2, R, C))
    for f, (k0, k1, p0, p1) in enumerate(plan):
        tiles[f, 0, :k1 - k0, :p1 - p0] = S[k0:k1, p0:p1]
        tiles[f, 1, :k1 - k0, :p1 - p0] = 1.0
    wsh = np.zeros((F, 2, R, C))
    for step in range(R):
        wsh[:, :, 1:] = wsh[:, :, :-1].copy()
        wsh[:, :, 0] = tiles[:, :, R - 1 - step]
    loaded = wsh[:, 1] > 0
    w = np.where(loaded, wsh[:, 0], 0.0)                        # the stationary operand
    wtag = np.where(loaded, fold_ids[:, None, None], -2.0)      # its fold (-2: none; never matches)

    # Registers, per fold. Streamed operand and partial sums: planes (value, fold tag, stream
    # index); an empty register has tags -1. They are double-banked: cycle t writes bank t % 2
    # from the other bank, so every PE reads its neighbours' values of the previous cycle. The
    # partial sum banks have one extra row on top, the input port: the top edge feeds each
    # column a zero sum, tagged like the operand entering that column's top PE.
    act = [np.zeros((F, 3, R, C)) for _ in range(2)]
    psum = [np.zeros((F, 3, R + 1, C)) for _ in range(2)]
    for bank in act + psum:
        bank[:, 1:] = -1.0
    banks = []
    for d in (0, 1):
        s = 1 - d
        banks.append((act[d][..., 1:], act[s][..., :-1], act[d][..., 0], act[d][:, 0],
                      act[d][:, 1], psum[s][:, 1:, 0], act[d][:, 1:, 0], psum[d][:, :, 1:],
                      psum[s][:, :, :-1], psum[d][:, 0, 1:], psum[d][:, :, R]))
    prod = np.zeros((F, R, C))
    log = np.zeros((n_run, F, R, C), dtype=bool)            # activity, fold by fold
    exits = np.zeros((n_run + R, F, 3, C))                  # what leaves the bottom edge

    for t in range(n_run):
        (act_in, act_from, act_edge, act_val, act_tag, ps_port_tags, act_tags_row0, ps_in,
         ps_from, ps_val, ps_bottom) = banks[t & 1]
        mac = log[t]
        # the streamed operand moves one PE to the right; the skewed feed enters at the left edge
        np.copyto(act_in, act_from)
        np.copyto(act_edge, feed[t])
        # a PE fires when its operand and its stationary value belong to the same fold
        np.equal(act_tag, wtag, out=mac)
        np.multiply(act_val, w, out=prod)
        np.multiply(prod, mac, out=prod)
        # partial sums move one PE down (zero sums enter at the top) and pick up the products
        np.copyto(ps_port_tags, act_tags_row0)
        np.copyto(ps_in, ps_from)
        np.add(ps_val, prod, out=ps_val)
        np.copyto(exits[t], ps_bottom)

    # drain: no operand is left in the array; the last partial sums travel down to the bottom
    last = psum[(n_run - 1) & 1].copy()
    for t in range(n_run, n_run + R):
        last[:, 1:, 0] = -1.0                  # nothing enters at the top any more
        last[:, :, 1:] = last[:, :, :-1].copy()
        exits[t] = last[:, :, R]

    # the controller: place the folds on the global timeline
    spans = _fold_ends(log, expected)          # cycles from a fold's first stream step to its end
    load_start, stream_start, end = [0] * F, [0] * F, [0] * F
    for f in range(F):
        kr = int(krs[f])
        if f == 0:
            stream_start[f] = kr
        elif double_buffer:                    # loaded while the previous fold streamed
            load_start[f] = stream_start[f - 1]
            stream_start[f] = max(end[f - 1], load_start[f] + kr)
        else:                                  # loaded after the previous fold's last MAC
            load_start[f] = end[f - 1]
            stream_start[f] = load_start[f] + kr
        end[f] = stream_start[f] + int(spans[f])
    n_cycles = end[-1]
    if n_cycles > max_cycles:
        raise _too_long(max_cycles)
    activity = _place(spans, log, stream_start, n_cycles, R, C)

    # accumulators below the array: add every sum that left the bottom edge of a column its
    # fold uses into its output (sums in unused columns never met a weight and are dropped),
    # the K-folds of an output tile in the order they ran
    vals, ftag, qtag = exits[:, :, 0], exits[:, :, 1], exits[:, :, 2]      # (time, fold, C)
    valid = (ftag >= 0) & (np.arange(C)[None, None, :] < ncs[None, :, None])
    n_out = int(np.count_nonzero(valid))
    if n_out != fk * Q * P:   # every (fold, stream index, used column) leaves exactly once
        raise RuntimeError(f"internal error: {n_out} partial sums left the array, "
                           f"expected {fk * Q * P}")
    _, fi, ci = np.nonzero(valid)
    sums = np.zeros((F, Q, C))
    sums[fi, qtag[valid].astype(np.int64), ci] = vals[valid]
    sums = sums.reshape(fp, fk, Q, C)
    acc = np.zeros((fp, Q, C))
    for i in range(fk):
        acc += sums[:, i]
    Y = acc.transpose(1, 0, 2).reshape(Q, fp * C)[:, :P].copy()

    folds = [Fold(index=f, row_span=(k0, k1), col_span=(p0, p1), load_start=load_start[f],
                  stream_start=stream_start[f], end=end[f], macs=int(expected[f]))
             for f, (k0, k1, p0, p1) in enumerate(plan)]
    return Y, n_cycles, activity, folds


def _run_output_stationary(A: np.ndarray, B: np.ndarray, R: int, C: int, max_cycles: int):
    """Output-stationary array: PE (r, c) accumulates one output; A moves right, B moves down."""
    M, K = A.shape
    N = B.shape[1]
    fm, fn = _ceil_div(M, R), _ceil_div(N, C)
    F = fm * fn
    if F * K > max_cycles:             # every fold streams K operands through PE (0, 0)
        raise _too_long(max_cycles)
    plan = []
    for i in range(fm):
        for j in range(fn):
            m0, n0 = i * R, j * C
            plan.append((m0, min(M, m0 + R), n0, min(N, n0 + C)))
    expected = np.array([(m1 - m0) * (n1 - n0) * K for (m0, m1, n0, n1) in plan])
    total = int(expected.sum())
    steps = K + max(R, C) - 1
    n_max = steps + max(R, C) - 1      # by then every operand has crossed the array

    def skewed(src, starts, used, lanes, empty):
        """Feeds of one edge for all folds: lane l of fold f receives src[starts[f] + l, s - l]
        at step s, as (value, tag) planes: (step, fold, 2, lanes); empty once the feed is over."""
        kk = np.arange(n_max)[:, None, None] - np.arange(lanes)[None, None, :]
        ok = (kk >= 0) & (kk < K) & (np.arange(lanes)[None, None, :] < used[None, :, None])
        lc = np.minimum(starts[:, None] + np.arange(lanes)[None, :], src.shape[0] - 1)[None]
        out = np.empty((n_max, len(starts), 2, lanes))
        out[:, :, 0] = np.where(ok, src[lc, np.minimum(np.maximum(kk, 0), K - 1)], 0.0)
        out[:, :, 1] = np.where(ok, np.arange(len(starts))[None, :, None] * K + kk, empty)
        return out

    # tags: fold * K + k; an empty A register holds -1 and an empty B register -2, so two empty
    # registers never look like a matching pair
    fa = skewed(A, np.array([m0 for (m0, _, _, _) in plan]),
                np.array([m1 - m0 for (m0, m1, _, _) in plan]), R, -1.0)
    fb = skewed(B.T, np.array([n0 for (_, _, n0, _) in plan]),
                np.array([n1 - n0 for (_, _, n0, n1) in plan]), C, -2.0)

    a = [np.zeros((F, 2, R, C)) for _ in range(2)]    # A registers (double-banked), move right
    b = [np.zeros((F, 2, R, C)) for _ in range(2)]    # B registers (double-banked), move down
    for d in (0, 1):
        a[d][:, 1] = -1.0
        b[d][:, 1] = -2.0
    banks = [(a[d][..., 1:], a[1 - d][..., :-1], a[d][..., 0], a[d][:, 0], a[d][:, 1],
              b[d][:, :, 1:], b[1 - d][:, :, :-1], b[d][:, :, 0], b[d][:, 0], b[d][:, 1])
             for d in (0, 1)]
    acc = np.zeros((F, R, C))             # the stationary outputs
    prod = np.zeros((F, R, C))
    log = np.zeros((n_max, F, R, C), dtype=bool)
    done = 0
    n_run = 0
    for t in range(n_max):
        a_in, a_from, a_edge, a_val, a_tag, b_in, b_from, b_edge, b_val, b_tag = banks[t & 1]
        mac = log[t]
        # A moves one PE right, B one PE down; the skewed feeds enter at the left and top edges
        np.copyto(a_in, a_from)
        np.copyto(b_in, b_from)
        np.copyto(a_edge, fa[t])
        np.copyto(b_edge, fb[t])
        np.equal(a_tag, b_tag, out=mac)        # A[m, k] meets B[k, n] of the same fold
        np.multiply(a_val, b_val, out=prod)
        np.multiply(prod, mac, out=prod)
        acc += prod
        n_run = t + 1
        done += int(np.count_nonzero(mac))
        if done == total:                      # every fold's last MAC is done
            break

    # the controller: each fold starts in the cycle after the previous fold's last MAC
    if F == 1 and done == total:               # the run ended with the fold's last MAC
        spans = [n_run]
    else:
        spans = _fold_ends(log[:n_run], expected)
    start, end = [0] * F, [0] * F
    for f in range(F):
        start[f] = end[f - 1] if f else 0
        end[f] = start[f] + int(spans[f])
    n_cycles = end[-1]
    if n_cycles > max_cycles:
        raise _too_long(max_cycles)
    activity = _place(spans, log, start, n_cycles, R, C)

    out = np.zeros((M, N))
    for f, (m0, m1, n0, n1) in enumerate(plan):   # copy the finished outputs out
        out[m0:m1, n0:n1] = acc[f, :m1 - m0, :n1 - n0]
    folds = [Fold(index=f, row_span=(m0, m1), col_span=(n0, n1), load_start=start[f],
                  stream_start=start[f], end=end[f], macs=int(expected[f]))
             for f, (m0, m1, n0, n1) in enumerate(plan)]
    return out, n_cycles, activity, folds


# Pipelined folds: one array, real shared registers. Unlike the runs above, folds here are not
# run in copies of the array and placed afterwards: the folds overlap in the same PEs, the next
# tile loads into the shadow registers while the current fold streams, and a controller decides,
# cycle by cycle, from what it observes, when the next fold's operands enter.


def _run_stationary_pipelined(X: np.ndarray, S: np.ndarray, R: int, C: int, max_cycles: int):
    """Stationary-operand array with pipelined folds: S (Kd x P) held, rows of X (Q x Kd) stream.

    Registers per PE: the streamed operand (value, fold, stream index), the active and the shadow
    stationary operand (value, fold), the partial sum (value, fold, stream index). Each cycle:
    (1) the controller starts the next fold's stream if the left edge is free and column 0 holds
    its tile; operands move one PE right and the skewed feed enters at the left edge; (2) a PE
    reached by the first row of a fold (stream index 0) swaps its shadow operand in; (3) a PE
    fires when its operand and its active stationary value belong to the same fold; (4) partial
    sums move one PE down, picking up the products, and leave at the bottom edge into the
    accumulators; (5) the loaders shift the next tile into the shadow registers: column c's load
    of fold f + 1 starts in the cycle fold f's first row reaches PE (0, c), and row r's shadow
    register takes part from ``r`` cycles later, the cycle fold f's swap has passed it.
    """
    Q, Kd = X.shape
    P = S.shape[1]
    fk, fp = _ceil_div(Kd, R), _ceil_div(P, C)
    F = fk * fp
    plan = [(i * R, min(Kd, i * R + R), j * C, min(P, j * C + C)) for j in range(fp) for i in range(fk)]
    k0s = np.array([p[0] for p in plan])
    krs = np.array([p[1] - p[0] for p in plan])
    p0s = np.array([p[2] for p in plan])
    ncs = np.array([p[3] - p[2] for p in plan])
    expected = krs * ncs * Q
    total, n_exits = int(expected.sum()), fk * Q * P
    rows, cols = np.arange(R)[:, None], np.arange(C)[None, :]

    a_val, a_fold, a_idx = np.zeros((R, C)), np.full((R, C), -1), np.full((R, C), -1)
    w_val, w_fold = np.zeros((R, C)), np.full((R, C), -2)          # active stationary operand
    sh_val, sh_fold = np.zeros((R, C)), np.full((R, C), -2)        # shadow
    ps_val, ps_fold, ps_idx = np.zeros((R, C)), np.full((R, C), -1), np.full((R, C), -1)
    ld_fold, ld_start = np.zeros(C, dtype=np.int64), np.zeros(C, dtype=np.int64)  # fold 0: from 0
    starts, load0 = [], {0: 0}                                     # s_f; column 0's load start
    out = np.zeros((Q, P))
    log, ends = [], np.zeros(F, dtype=np.int64)
    done = exited = 0
    t = lo = 0                          # folds lo.. may still feed a row (fold f feeds until s_f + Q + R - 1)
    lanes = np.arange(R)
    loading_until = R                   # the first tile loads in cycles 0 .. kr_0 - 1
    while done < total or exited < n_exits:
        if t > max_cycles + R:
            raise _too_long(max_cycles)
        g = len(starts)                         # (1) the controller: start the next fold?
        if g < F and g in load0 and t >= load0[g] + krs[g] and (not starts or t >= starts[-1] + Q):
            starts.append(t)
        a_val[:, 1:], a_fold[:, 1:], a_idx[:, 1:] = a_val[:, :-1], a_fold[:, :-1], a_idx[:, :-1]
        a_val[:, 0], a_fold[:, 0], a_idx[:, 0] = 0.0, -1, -1
        while lo < len(starts) and starts[lo] + Q + R - 1 <= t:
            lo += 1
        for f in range(lo, len(starts)):                            # folds still feeding a row
            q = t - starts[f] - lanes
            ok = (q >= 0) & (q < Q) & (lanes < krs[f])
            if ok.any():
                r_ok = np.nonzero(ok)[0]
                a_val[r_ok, 0] = X[q[ok], k0s[f] + r_ok]
                a_fold[r_ok, 0], a_idx[r_ok, 0] = f, q[ok]
        swap = (a_idx == 0) & (a_fold >= 0)      # (2) the swap travels with the first row
        if swap.any():
            w_val, w_fold = np.where(swap, sh_val, w_val), np.where(swap, sh_fold, w_fold)
        fire = (a_fold >= 0) & (a_fold == w_fold)   # (3)
        prod = np.where(fire, a_val * w_val, 0.0)
        ps_val[1:], ps_fold[1:], ps_idx[1:] = ps_val[:-1] + prod[1:], ps_fold[:-1], ps_idx[:-1]
        ps_val[0], ps_fold[0], ps_idx[0] = prod[0], a_fold[0], a_idx[0]     # (4)
        n_fire = int(np.count_nonzero(fire))
        if n_fire:
            log.append((t, fire.copy()))
            done += n_fire
            ends[a_fold[fire]] = t + 1
        leave = ps_fold[R - 1] >= 0
        if leave.any():
            c_out = np.nonzero(leave)[0]
            f_out = ps_fold[R - 1, c_out]
            use = c_out < ncs[f_out]             # sums of columns the fold does not use hold 0
            out[ps_idx[R - 1, c_out[use]], p0s[f_out[use]] + c_out[use]] += ps_val[R - 1, c_out[use]]
            exited += int(use.sum())
            ps_fold[R - 1, c_out] = -1           # left the array
        first = (a_idx[0] == 0) & (a_fold[0] >= 0) & (a_fold[0] + 1 < F)   # (5) loaders
        if first.any():
            ld_fold[first], ld_start[first] = a_fold[0, first] + 1, t
            loading_until = t + R                # a load started now ends within R cycles
        if first[0]:
            load0[int(a_fold[0, 0]) + 1] = t
        if t > loading_until:                    # no loader is shifting: nothing to write
            t += 1
            continue
        step = t - ld_start                      # per column; row r writes while r <= step < kr
        kr_c = krs[ld_fold]
        write = (rows <= step[None, :]) & (step[None, :] < kr_c[None, :])
        if write.any():
            tile_row = np.clip(kr_c - 1 - step, 0, R - 1)
            col_ok = cols[0] < ncs[ld_fold]
            src = np.clip(k0s[ld_fold] + tile_row, 0, Kd - 1), np.clip(p0s[ld_fold] + cols[0], 0, P - 1)
            top_val = np.where(col_ok, S[src], 0.0)
            top_fold = np.where(col_ok, ld_fold, -2)
            new_val = np.vstack([top_val[None], sh_val[:-1]])
            new_fold = np.vstack([top_fold[None], sh_fold[:-1]])
            sh_val, sh_fold = np.where(write, new_val, sh_val), np.where(write, new_fold, sh_fold)
        t += 1
    return _finish_pipelined(out, log, plan, load0, starts, ends, expected, R, C, max_cycles)


def _run_output_stationary_pipelined(A: np.ndarray, B: np.ndarray, R: int, C: int, max_cycles: int):
    """Output-stationary array with pipelined folds: a fold's operands enter as soon as the edges
    are free; a PE reached by the next fold's first operands hands its finished accumulator to a
    shadow register (read out of the array, not counted) and starts the next output."""
    M, K = A.shape
    N = B.shape[1]
    fm, fn = _ceil_div(M, R), _ceil_div(N, C)
    F = fm * fn
    plan = [(i * R, min(M, i * R + R), j * C, min(N, j * C + C)) for i in range(fm) for j in range(fn)]
    m0s, mrs = np.array([p[0] for p in plan]), np.array([p[1] - p[0] for p in plan])
    n0s, ncs = np.array([p[2] for p in plan]), np.array([p[3] - p[2] for p in plan])
    expected = mrs * ncs * K
    total = int(expected.sum())
    rows, cols = np.arange(R)[:, None], np.arange(C)[None, :]
    a_val, a_fold, a_k = np.zeros((R, C)), np.full((R, C), -1), np.full((R, C), -1)
    b_val, b_fold, b_k = np.zeros((R, C)), np.full((R, C), -2), np.full((R, C), -2)
    acc, acc_fold = np.zeros((R, C)), np.full((R, C), -1)
    out = np.zeros((M, N))
    starts, log, ends = [], [], np.zeros(F, dtype=np.int64)
    done = 0
    t = lo = 0                          # folds lo.. may still feed an edge (until s_f + K + max(R, C) - 1)

    def flush(mask):
        f = acc_fold[mask]
        rr, cc = np.nonzero(mask)
        out[m0s[f] + rr, n0s[f] + cc] = acc[mask]

    while done < total:
        if t > max_cycles:
            raise _too_long(max_cycles)
        if len(starts) < F and (not starts or t >= starts[-1] + K):   # the edges are free
            starts.append(t)
        a_val[:, 1:], a_fold[:, 1:], a_k[:, 1:] = a_val[:, :-1], a_fold[:, :-1], a_k[:, :-1]
        b_val[1:], b_fold[1:], b_k[1:] = b_val[:-1], b_fold[:-1], b_k[:-1]
        a_val[:, 0], a_fold[:, 0], a_k[:, 0] = 0.0, -1, -1
        b_val[0], b_fold[0], b_k[0] = 0.0, -2, -2
        while lo < len(starts) and starts[lo] + K + max(R, C) - 1 <= t:
            lo += 1
        for f in range(lo, len(starts)):
            for lane, used, val, fold, kk, edge in ((np.arange(R), mrs[f], a_val, a_fold, a_k, 0),
                                                    (np.arange(C), ncs[f], b_val, b_fold, b_k, 1)):
                k = t - starts[f] - lane
                ok = (k >= 0) & (k < K) & (lane < used)
                if ok.any():
                    ln = np.nonzero(ok)[0]
                    if edge == 0:
                        val[ln, 0], fold[ln, 0], kk[ln, 0] = A[m0s[f] + ln, k[ok]], f, k[ok]
                    else:
                        val[0, ln], fold[0, ln], kk[0, ln] = B[k[ok], n0s[f] + ln], f, k[ok]
        fire = (a_fold >= 0) & (a_fold == b_fold) & (a_k == b_k)
        new = fire & (acc_fold != a_fold)
        if new.any():
            flush(new & (acc_fold >= 0))
            acc[new], acc_fold[new] = 0.0, a_fold[new]
        acc += np.where(fire, a_val * b_val, 0.0)
        n_fire = int(np.count_nonzero(fire))
        if n_fire:
            log.append((t, fire.copy()))
            done += n_fire
            ends[a_fold[fire]] = t + 1
        t += 1
    flush(acc_fold >= 0)
    return _finish_pipelined(out, log, plan, starts, starts, ends, expected, R, C, max_cycles)


# ---------------------------------------------------------------------------------------------
# Added for the chapter "TPUs and systolic arrays" (06_tpu_systolic): which MAC every PE does in
# every cycle, the words that cross the array's edge (Kung's reuse argument), the utilization
# the closed forms predict, and the MXU arithmetic behind a TPU's peak.


def mac_schedule(run: SystolicRun) -> np.ndarray:
    """Which multiply-accumulate every PE performs in every cycle of a :func:`simulate` run.

    The model (chapter "TPUs and systolic arrays"): within a fold whose streamed operands start
    entering the array at cycle ``s`` (``Fold.stream_start``), PE (r, c) performs its q-th MAC
    at cycle ``s + q + r + c``: the streamed operand moves one PE per cycle, so the wavefront
    reaches PE (r, c) ``r + c`` cycles after PE (0, 0). With ``(k0, n0, m0)`` the fold's
    offsets (``Fold.row_span``/``col_span`` in the dimensions of :data:`MAPPINGS`), the MAC is
    A[m, k] * B[k, n] with

    * 'ws': k = k0 + r, n = n0 + c, m = q (row q of A streams; B[k, n] stays in the PE);
    * 'is': k = k0 + r, m = m0 + c, n = q (column q of B streams; A[m, k] stays in the PE);
    * 'os': m = m0 + r, n = n0 + c, k = q (A and B both stream; C[m, n] stays in the PE).

    Returns an int64 array of shape ``(run.cycles, run.rows, run.cols, 3)`` holding (m, n, k),
    and -1 in all three entries where a PE is idle. Its non-idle entries are exactly
    ``run.activity`` (the tests check this, and that summing A[m, k] * B[k, n] over the schedule
    rebuilds C), so a figure drawn from it shows what the simulator did.

    >>> run = simulate([[1, 2], [3, 4]], [[5, 6], [7, 8]], 2, 2, "ws")
    >>> mac_schedule(run)[3].tolist()   # cycle 3: (m, n, k) in each PE, -1 = idle
    [[[1, 0, 0], [0, 1, 0]], [[0, 0, 1], [-1, -1, -1]]]
    """
    if not isinstance(run, SystolicRun):
        raise ValueError(f"run={type(run).__name__} is not allowed; pass the SystolicRun "
                         f"that simulate() returned")
    out = np.full((run.cycles, run.rows, run.cols, 3), -1, dtype=np.int64)
    M, N = run.C.shape
    q_len = {"ws": M, "is": N, "os": run.macs // (M * N)}[run.dataflow]   # the streamed length
    for f in run.folds:
        q, r, c = np.ogrid[:q_len, :f.rows_used, :f.cols_used]
        t = f.stream_start + q + r + c
        a, b = f.row_span[0] + r, f.col_span[0] + c        # indices on the array's rows, columns
        shape = t.shape
        if run.dataflow == "ws":
            m, n, k = q, b, a
        elif run.dataflow == "is":
            m, n, k = b, q, a
        else:
            m, n, k = a, b, q
        mnk = np.stack([np.broadcast_to(x, shape) for x in (m, n, k)], axis=-1)
        out[np.broadcast_to(t, shape), np.broadcast_to(r, shape), np.broadcast_to(c, shape)] = mnk
    return out


@dataclasses.dataclass(frozen=True)
class EdgeTraffic:
    """Words that cross the edge of a systolic array during one product (see :func:`edge_traffic`).

    ``loaded``: stationary operand shifted in ('ws': B, 'is': A; 0 for 'os'). ``streamed``:
    operands entering at the edges while the array computes. ``drained``: results leaving it
    (partial sums per K-fold for 'ws'/'is', finished outputs for 'os'). ``macs = M*N*K``.
    """

    loaded: int
    streamed: int
    drained: int
    macs: int

    @property
    def words(self) -> int:
        """All words that crossed the edge."""
        return self.loaded + self.streamed + self.drained

    @property
    def macs_per_word(self) -> float:
        """Reuse: multiply-accumulates per word crossing the edge (a datapath that reads both
        operands for every MAC from a register file or memory gets 1/2)."""
        return self.macs / self.words


def edge_traffic(M: int, N: int, K: int, rows: int, cols: int, dataflow: str) -> EdgeTraffic:
    """Count the words crossing a ``rows x cols`` array's edge for an (M, K) @ (K, N) product.

    The model (chapter "TPUs and systolic arrays"; H. T. Kung, "Why systolic architectures?",
    1982): an operand enters the array once and is used by every PE it passes, so the traffic
    at the edge is far smaller than the number of MACs. With folds as in :func:`cycles`
    (``R = rows``, ``C = cols``):

    * 'ws': loaded ``K*N`` (each weight once), streamed ``M*K*ceil(N/C)`` (A enters once per
      column block), drained ``M*N*ceil(K/R)`` (one partial sum per output and K-fold);
    * 'is': loaded ``K*M``, streamed ``K*N*ceil(M/C)``, drained ``M*N*ceil(K/R)``;
    * 'os': loaded 0, streamed ``M*K*ceil(N/C) + K*N*ceil(M/R)``, drained ``M*N``.

    For large matrices on a square ``R x R`` weight-stationary array this is about
    ``M*N*K * (1/M + 2/R)`` words, so reuse approaches ``R/2`` MACs per word: ``R`` times a
    datapath that fetches two operands per MAC. This counts traffic between the array and the
    on-chip buffers that feed it, not HBM traffic (that is the roofline's business).

    >>> t = edge_traffic(256, 256, 256, 128, 128, "ws")
    >>> (t.loaded, t.streamed, t.drained, round(t.macs_per_word, 1))
    (65536, 131072, 131072, 51.2)
    """
    M, N, K, R, C, df = _sizes(M, N, K, rows, cols, dataflow)
    if df == "os":
        streamed = M * K * _ceil_div(N, C) + K * N * _ceil_div(M, R)
        return EdgeTraffic(0, streamed, M * N, M * N * K)
    P, Q = (N, M) if df == "ws" else (M, N)   # P on the columns, Q streamed
    return EdgeTraffic(K * P, Q * K * _ceil_div(P, C), Q * P * _ceil_div(K, R), M * N * K)


def utilization(M: int, N: int, K: int, rows: int, cols: int, dataflow: str, *,
                double_buffer: bool = False, pipelined: bool = False) -> float:
    """Fraction of the array's MAC slots doing useful work: ``M*N*K / (rows*cols*cycles)``.

    The model (chapter "TPUs and systolic arrays"): ``cycles`` is :func:`cycles`, or
    :func:`cycles_double_buffered` with ``double_buffer=True``, or :func:`cycles_pipelined` with
    ``pipelined=True`` (which has shadow registers by definition, whatever ``double_buffer``
    says); equal to
    ``simulate(...).utilization`` for the same shape. It is at most :func:`shape_efficiency`
    (padding) and falls further when the streamed dimension is short next to the fill and
    drain of each fold.

    >>> round(utilization(256, 256, 256, 128, 128, "ws"), 3)
    0.401
    >>> round(utilization(256, 256, 256, 128, 128, "ws", pipelined=True), 3)
    0.728
    """
    if not isinstance(double_buffer, (bool, np.bool_)):
        raise ValueError(f"double_buffer={double_buffer!r} is not allowed; "
                         f"it must be True or False")
    if boolean("pipelined", pipelined):
        count = cycles_pipelined(M, N, K, rows, cols, dataflow)
    else:
        count = (cycles_double_buffered if double_buffer else cycles)(M, N, K, rows, cols, dataflow)
    return (int(M) * int(N) * int(K)) / (int(rows) * int(cols) * count)


def mxu_peak(chip) -> float | None:
    """Peak operations per second implied by a TPU's MXUs: cores x MXUs x rows x cols x 2 x clock.

    The model (chapter "TPUs and systolic arrays"): every PE of every MXU does one
    multiply-accumulate (2 operations) per clock cycle. ``chip`` is a
    :class:`accelbook.specs.Chip`; the fields come from the spec database (tensorcores_per_chip,
    mxus_per_tensorcore, mxu_rows, mxu_cols, clock). Returns ``None`` when any is missing (GPUs,
    the host CPU). Comparing it with the spec sheet's peak checks the database: it agrees with the
    bf16 peak of every TPU in it, and with TPU v1's int8 peak, to within 1 %. (Where a TPU
    lists an int8 peak twice its bf16 peak, the MXU does two int8 MACs per PE per cycle.)
    """
    fields = ("tensorcores_per_chip", "mxus_per_tensorcore", "mxu_rows", "mxu_cols", "clock")
    try:
        values = [chip.value(f) for f in fields]
    except AttributeError:
        raise ValueError(f"chip={chip!r} is not allowed; pass a Chip from accelbook.specs") from None
    if any(v is None for v in values):
        return None
    cores, mxus, r, c, clock = values
    return float(cores * mxus * r * c * 2 * clock)


LAYOUT_TILE_32BIT: tuple[int, int] = (8, 128)
"""The TPU's memory tile for 32-bit values: (sublanes, lanes) of one vector register."""


def layout_tile(dtype: str) -> tuple[int, int]:
    """The (second-to-last, last) tile a TPU lays an array of ``dtype`` out in.

    The model (chapter "TPUs and systolic arrays"): a vector register holds 8 sublanes x 128
    lanes of 32-bit words, and VMEM is read and written in tiles of that shape (JAX's Pallas
    TPU documentation). Narrower values are packed into the 32-bit words along the sublanes, so
    a tile holds ``8 * 4 / itemsize`` rows: (8, 128) for fp32, (16, 128) for bf16 and fp16,
    (32, 128) for int8 and fp8. fp64 and tf32 are not TPU storage types and are refused.

    >>> layout_tile("fp32"), layout_tile("bf16"), layout_tile("int8")
    ((8, 128), (16, 128), (32, 128))
    """
    if dtype not in ("fp32", "bf16", "fp16", "fp8", "int8"):
        raise ValueError(f"dtype={dtype!r} is not allowed; a TPU lays out 'fp32', 'bf16', "
                         f"'fp16', 'fp8' and 'int8' arrays")
    sub, lanes = LAYOUT_TILE_32BIT
    return sub * 4 // specs.itemsize(dtype), lanes


def layout_padding(shape, dtype: str) -> tuple[tuple[int, ...], float]:
    """The shape an array fills in a TPU's vector registers (or a Pallas block in VMEM), and the
    fraction of it that is padding.

    The model (chapter "TPUs and systolic arrays"): the last two dimensions are rounded up to
    whole tiles of :func:`layout_tile` (``(8, 128)`` for 32-bit values, ``(16, 128)`` for
    bf16), every leading dimension is kept: ``padded = (..., roundup(d[-2], s), roundup(d[-1],
    128))`` and ``wasted = 1 - prod(shape) / prod(padded)``. Every vector operation on the array
    (a matmul's operand load, an elementwise op) works on the padded tiles. This is register and
    VMEM-block occupancy, not the array's size in HBM: there XLA picks the tiles itself and uses
    smaller ones (such as ``(2, 128)`` for a bf16 row) when the second-to-last dimension is small.
    Arrays of two or more dimensions only (the compiler lays 1-D arrays out in its own way).

    >>> layout_padding((4096, 4096), "bf16")
    ((4096, 4096), 0.0)
    >>> layout_padding((32, 1, 64), "fp32")     # 32 rows of 1 x 64: each fills 8 x 128
    ((32, 8, 128), 0.9375)
    """
    tile = layout_tile(dtype)
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(f"shape={shape!r} is not allowed; pass a tuple of two or more positive "
                         f"integers") from None
    if len(dims) < 2:
        raise ValueError(f"shape={shape!r} is not allowed; the (sublane, lane) tiling applies to "
                         f"the last two dimensions, so pass two or more")
    dims = tuple(positive_int(f"shape[{i}]", d) for i, d in enumerate(dims))
    padded = (*dims[:-2], _ceil_div(dims[-2], tile[0]) * tile[0], _ceil_div(dims[-1], tile[1]) * tile[1])
    used = float(np.prod(dims, dtype=float))
    return padded, 1.0 - used / float(np.prod(padded, dtype=float))


def k_cliff_sweep(T: int, backend: str) -> tuple[int, list[int]]:
    """The shape-cliff measurement of chapter 06: ``(MN, Ks)`` for ``(MN, K) @ (K, MN)`` matmuls.

    The model (chapter "TPUs and systolic arrays"): the sweep varies only K, the contracted
    dimension, which the MXU pads to whole ``T x T`` tiles. That padding costs MXU cycles, not
    HBM bytes, so it costs time only where the matmul is compute-bound, past the chip's ridge
    point (K is also A's last dimension, whose layout rounds it up to 128 lanes; on a 128-wide MXU
    the two paddings coincide). The sweep therefore keeps
    M = N large (8192 on a GPU or TPU) and steps K from ``8T`` to ``10T`` in steps of ``T/8``:
    the arithmetic intensity ``2 MN^2 K / (2 (2 MN K + MN^2))`` is then at least about 800
    FLOP/byte in bf16 for T = 128, above the ridge of every chip in the spec database (the tests
    check v5e, v6e, H100, A100, L4 and T4). On a CPU (``backend='cpu'``) M = N = 512 keeps the
    run short; a CPU has no MXU, so there the sweep only shows its own tiling.

    >>> k_cliff_sweep(128, "tpu")[0], k_cliff_sweep(128, "tpu")[1][:3]
    (8192, [1024, 1040, 1056])
    """
    T = positive_int("T", T)
    if T % 8:
        raise ValueError(f"T={T} is not allowed; the sweep steps by T/8, so T must be a multiple of 8")
    if backend not in ("cpu", "gpu", "tpu"):
        raise ValueError(f"backend={backend!r} is not allowed; allowed: 'cpu', 'gpu', 'tpu'")
    return (512 if backend == "cpu" else 8192), list(range(8 * T, 10 * T + 1, T // 8))
