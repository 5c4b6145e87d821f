"""accelbook.models.collectives: the links as sourced data, the alpha-beta-gamma costs of the
collectives checked against hand-worked cases and against a simulation that moves real arrays,
the lower bounds, nccl-tests' bus bandwidth checked against a published table, the topologies
against brute-force graph search, and the parallelism costs against closed forms."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math

import numpy as np
import pytest

from accelbook.models import collectives as C
from accelbook.models import decoder, kvcache

ALPHA, BETA, GAMMA = 1e-6, 1e-9, 0.5e-9
N = 1e6


# ---------------------------------------------------------------------------------------------
# The data
# ---------------------------------------------------------------------------------------------

def _raw():
    import tomllib
    from importlib.resources import files
    return tomllib.loads(files("accelbook.data").joinpath("links.toml").read_text())


def test_every_value_is_sourced_and_every_bandwidth_says_direction_and_rate():
    data = C.link_data()
    assert len(data.links) >= 25
    for link in data.links.values():
        assert link.family in C.FAMILIES
        for q, v in link.values.items():
            assert v.source.url.startswith("https://"), (link.key, q)
            if v.si_unit == "B/s":
                assert v.direction in C.DIRECTIONS and v.rate == "line", (link.key, q)
            else:
                assert v.direction is None and v.rate is None, (link.key, q)
    for m in data.measured:
        assert m.source.url.startswith("https://") and m.method
        assert (m.direction in C.DIRECTIONS) == (m.quantity != "latency")


def test_the_promised_links_are_there():
    keys = set(C.link_data().links)
    for key in ("pcie3-x16", "pcie4-x16", "pcie5-x16", "pcie6-x16", "nvlink2", "nvlink3", "nvlink4",
                "nvlink5", "nvswitch3", "nvlink-switch-b200", "nvlink-c2c", "ib-hdr", "ib-ndr", "ib-xdr",
                "eth-100g", "eth-200g", "eth-400g", "eth-800g", "tpu-v4-ici", "tpu-v5e-ici", "tpu-v5p-ici",
                "tpu-v6e-ici"):
        assert key in keys
    assert {lk.key for lk in C.links("ethernet")} == {"eth-100g", "eth-200g", "eth-400g", "eth-800g"}


def test_nvlink_links_times_per_link_rate_is_nvidias_both_directions_total():
    # Two numbers NVIDIA prints separately (links per GPU, GB/s per link per direction) must
    # multiply to the third (the per-GPU total, both directions added).
    for key in ("nvlink3", "nvlink4"):
        lk = C.get_link(key)
        per_link = lk.value("link_bandwidth")
        assert per_link.direction == "per direction" and not per_link.derived
        assert lk.value("links").value * per_link.value * 2 == lk.value("device_bandwidth").value
    b200 = C.get_link("nvlink5")
    assert b200.value("links").value * b200.value("link_bandwidth").value == b200.value("device_bandwidth").value
    # the one-way rate is half the headline figure
    assert C.get_link("nvlink4").bandwidth() == 450e9
    assert C.get_link("nvlink4").bandwidth(direction="both directions") == 900e9


def test_pcie_rates_follow_lane_rate_lanes_and_encoding():
    for gen, enc in ((3, 128 / 130), (4, 128 / 130), (5, 128 / 130)):
        lk = C.get_link(f"pcie{gen}-x16")
        lane, lanes = lk.value("lane_rate").value, lk.value("lanes").value
        assert lk.value("link_bandwidth").value == pytest.approx(lane * lanes * enc, rel=2e-3)
    for gen in (4, 5, 6):
        lk = C.get_link(f"pcie{gen}-x16")
        quoted = lk.value("quoted_bandwidth")
        # NVIDIA's and PCI-SIG's headline = raw lane rate x 16 lanes x both directions
        assert quoted.direction == "both directions"
        assert quoted.value == lk.value("lane_rate").value * 16 * 2
    assert C.get_link("pcie6-x16").bandwidth("link_bandwidth") == pytest.approx(64e9 / 8 * 16 * 242 / 256)


def test_google_pod_bisection_and_allreduce_figures_follow_from_the_torus_model():
    # Per-link rate derived from the per-chip figure; the torus formula then has to reproduce the
    # bisection and all-reduce bandwidths Google prints for the whole pod.
    for key, dims in (("tpu-v5e-ici", (16, 16)), ("tpu-v6e-ici", (16, 16))):
        lk = C.get_link(key)
        assert math.prod(dims) == lk.value("domain_size").value
        b = lk.bandwidth("link_bandwidth")
        assert b == lk.bandwidth("device_bandwidth") / lk.value("links").value
        torus = C.torus_topology(dims, b, 1e-6)
        assert torus.bisection_bandwidth == pytest.approx(lk.value("bisection_bandwidth").value)
        assert torus.p * lk.value("links").value * b == pytest.approx(lk.value("allreduce_bandwidth").value)


def test_measured_nvlink_and_pcie_rates_sit_below_the_line_rate():
    line = C.get_link("nvlink4").bandwidth()
    one_way = [m for m in C.measurements("nvlink4", "bandwidth") if m.direction == "per direction"]
    both = [m for m in C.measurements("nvlink4", "bandwidth") if m.direction == "both directions"]
    assert one_way and both
    for m in one_way:
        assert 0.8 < m.si / line < 0.9
    for m in both:
        assert 0.8 < m.si / (2 * line) < 0.9
    for m in C.measurements("pcie5-x16", "bandwidth"):
        assert 0.85 < m.si / C.get_link("pcie5-x16").bandwidth("link_bandwidth") < 0.9
    lat = C.measurements(quantity="latency")
    assert all(1e-6 < m.si < 10e-6 for m in lat)


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d["links"]["nvlink4"]["values"]["device_bandwidth"].pop("direction"), "direction"),
    (lambda d: d["links"]["nvlink4"]["values"]["device_bandwidth"].update(rate="peak"), "rate"),
    (lambda d: d["links"]["nvlink4"]["values"]["links"].update(direction="per direction"), "direction"),
    (lambda d: d["links"]["nvlink4"]["values"].update(speed={"value": 1, "unit": "GB/s", "source": "mle-network"}),
     "unknown quantity"),
    (lambda d: d["links"]["nvlink4"]["values"]["device_bandwidth"].update(source="nowhere"), "source"),
    (lambda d: d["links"]["nvlink4"]["values"]["device_bandwidth"].update(unit="GiB"), "converts"),
    (lambda d: d["links"]["nvlink4"].update(family="magic"), "family"),
    (lambda d: d["measured"][0].pop("direction"), "direction"),
    (lambda d: d["measured"][0].update(link="nvlink9"), "link"),
    (lambda d: d["sweeps"][0]["time_us"].pop(), "equal-length"),
    (lambda d: d["sources"]["mle-network"].update(kind="blog"), "kind"),
])
def test_parse_links_rejects_malformed_data(mutate, match):
    data = copy.deepcopy(_raw())
    mutate(data)
    with pytest.raises(ValueError, match=match):
        C.parse_links(data)


def test_lookups_name_what_is_known():
    with pytest.raises(KeyError, match="nvlink4"):
        C.get_link("nvlink9")
    with pytest.raises(KeyError, match="device_bandwidth"):
        C.get_link("nvlink4").value("speed")
    with pytest.raises(ValueError, match="direction"):
        C.get_link("nvlink4").bandwidth(direction="one way")
    with pytest.raises(ValueError, match="count"):
        C.get_link("nvlink4").value("links").per_direction()


# ---------------------------------------------------------------------------------------------
# Hand-worked costs: p = 4, n = 1 MB, alpha = 1 us, beta = 1 ns/B, gamma = 0.5 ns/B
# ---------------------------------------------------------------------------------------------

# (op, algorithm, seconds with gamma = 0, seconds with gamma), worked out by hand:
HAND = [
    # ring all-reduce: 2(p-1) = 6 messages; 2(p-1)/p = 1.5 n beta = 1.5 ms; (p-1)/p n gamma = 0.375 ms
    ("allreduce", "ring", 6e-6 + 1.5e-3, 6e-6 + 1.5e-3 + 0.375e-3),
    # binomial reduce + broadcast: 2 lg p = 4 messages of the whole n: 4 ms; lg p n gamma = 1 ms
    ("allreduce", "tree", 4e-6 + 4e-3, 4e-6 + 4e-3 + 1e-3),
    # recursive doubling: lg p = 2 exchanges of the whole n: 2 ms; reduce 2 n: 1 ms
    ("allreduce", "recursive_doubling", 2e-6 + 2e-3, 2e-6 + 2e-3 + 1e-3),
    # Rabenseifner: 2 lg p = 4 messages; 2(p-1)/p = 1.5 ms; 0.375 ms
    ("allreduce", "rabenseifner", 4e-6 + 1.5e-3, 4e-6 + 1.5e-3 + 0.375e-3),
    # ring all-gather: p-1 = 3 messages of n/p: 0.75 ms
    ("allgather", "ring", 3e-6 + 0.75e-3, 3e-6 + 0.75e-3),
    ("allgather", "recursive_doubling", 2e-6 + 0.75e-3, 2e-6 + 0.75e-3),
    # ring reduce-scatter: 3 messages of n/p, each reduced: 0.75 ms + 0.375 ms
    ("reducescatter", "ring", 3e-6 + 0.75e-3, 3e-6 + 0.75e-3 + 0.375e-3),
    ("reducescatter", "recursive_halving", 2e-6 + 0.75e-3, 2e-6 + 0.75e-3 + 0.375e-3),
    # binomial broadcast: lg p = 2 rounds of the whole message
    ("broadcast", "tree", 2e-6 + 2e-3, 2e-6 + 2e-3),
    # scatter (lg p messages) + ring all-gather (p-1): 5 messages; 2(p-1)/p n beta = 1.5 ms
    ("broadcast", "scatter_allgather", 5e-6 + 1.5e-3, 5e-6 + 1.5e-3),
    # pairwise all-to-all: p-1 = 3 exchanges of n/p: 0.75 ms
    ("alltoall", "pairwise", 3e-6 + 0.75e-3, 3e-6 + 0.75e-3),
    # ring shift: every rank sends its whole n to the next rank at once: one message of n
    ("permute", "direct", 1e-6 + 1e-3, 1e-6 + 1e-3),
]


@pytest.mark.parametrize("op, algorithm, plain, with_gamma", HAND)
def test_hand_worked_costs(op, algorithm, plain, with_gamma):
    assert C.collective_time(op, algorithm, N, 4, ALPHA, BETA) == pytest.approx(plain, rel=1e-12)
    assert C.collective_time(op, algorithm, N, 4, ALPHA, BETA, GAMMA) == pytest.approx(with_gamma, rel=1e-12)


def test_every_algorithm_has_a_hand_worked_case():
    assert {(op, alg) for op, alg, *_ in HAND} == {(op, a) for op, algs in C.ALGORITHMS.items() for a in algs}


def test_one_rank_costs_nothing_and_arrays_work():
    for op, algs in C.ALGORITHMS.items():
        for alg in algs:
            assert C.collective_time(op, alg, N, 1, ALPHA, BETA, GAMMA) == 0.0
    n = np.array([0.0, 1e3, 1e6])
    t = C.collective_time("allreduce", "ring", n, 8, ALPHA, BETA)
    assert t == pytest.approx(14e-6 + 1.75 * n * BETA)
    assert isinstance(C.collective_time("allreduce", "ring", np.int64(10**6), np.int64(4), ALPHA, BETA), float)


def test_power_of_two_algorithms_reject_other_p_by_name():
    for op, alg in C.POWER_OF_TWO:
        with pytest.raises(ValueError, match=r"p=6 is not a power of two"):
            C.collective_time(op, alg, N, 6, ALPHA, BETA)
    with pytest.raises(ValueError, match="algorithm='ring'.*allowed: 'tree'"):
        C.collective_time("broadcast", "ring", N, 4, ALPHA, BETA)
    with pytest.raises(ValueError, match="op='gather'"):
        C.collective_time("gather", "ring", N, 4, ALPHA, BETA)


# ---------------------------------------------------------------------------------------------
# An independent check: run the schedules on real arrays and count what each rank sends
# ---------------------------------------------------------------------------------------------

def _ring_allreduce(vectors):
    """Ring reduce-scatter then ring all-gather on lists of chunks; returns (result per rank,
    rounds, elements sent per rank, elements reduced per rank)."""
    p = len(vectors)
    chunks = [np.array_split(v.astype(float), p) for v in vectors]
    sent = reduced = rounds = 0
    for step in range(p - 1):  # reduce-scatter: rank r sends chunk (r - step) to r + 1
        outgoing = [(r, (r - step) % p, chunks[r][(r - step) % p].copy()) for r in range(p)]
        for r, c, data in outgoing:
            chunks[(r + 1) % p][c] += data
        sent += outgoing[0][2].size
        reduced += outgoing[0][2].size
        rounds += 1
    for step in range(p - 1):  # all-gather: rank r sends its complete chunk (r + 1 - step)
        outgoing = [(r, (r + 1 - step) % p, chunks[r][(r + 1 - step) % p].copy()) for r in range(p)]
        for r, c, data in outgoing:
            chunks[(r + 1) % p][c] = data
        sent += outgoing[0][2].size
        rounds += 1
    return [np.concatenate(c) for c in chunks], rounds, sent, reduced


def _recursive_doubling_allreduce(vectors):
    p = len(vectors)
    vals = [v.astype(float).copy() for v in vectors]
    rounds = sent = reduced = 0
    d = 1
    while d < p:
        vals = [vals[r] + vals[r ^ d] for r in range(p)]
        rounds += 1
        sent += vals[0].size
        reduced += vals[0].size
        d *= 2
    return vals, rounds, sent, reduced


def _rabenseifner_allreduce(vectors):
    """Recursive halving reduce-scatter then recursive doubling all-gather (p a power of two)."""
    p = len(vectors)
    n = vectors[0].size
    vals = [v.astype(float).copy() for v in vectors]
    lo, hi = [0] * p, [n] * p
    rounds = sent = reduced = 0
    d = p // 2
    while d >= 1:
        new = [v.copy() for v in vals]
        for r in range(p):
            mid = (lo[r] + hi[r]) // 2
            keep = (lo[r], mid) if r & d == 0 else (mid, hi[r])
            partner = r ^ d
            new[r][keep[0]:keep[1]] = vals[r][keep[0]:keep[1]] + vals[partner][keep[0]:keep[1]]
            lo[r], hi[r] = keep
        sent += hi[0] - lo[0]
        reduced += hi[0] - lo[0]
        rounds += 1
        vals = new
        d //= 2
    d = 1
    while d < p:
        new = [v.copy() for v in vals]
        for r in range(p):
            partner = r ^ d
            new[r][lo[partner]:hi[partner]] = vals[partner][lo[partner]:hi[partner]]
        sent += hi[0] - lo[0]
        rounds += 1
        for r in range(p):
            partner = r ^ d
            lo[r], hi[r] = min(lo[r], lo[partner]), max(hi[r], hi[partner])
        vals = new
        d *= 2
    return vals, rounds, sent, reduced


@pytest.mark.parametrize("algorithm, run, ps", [
    ("ring", _ring_allreduce, (2, 3, 4, 5, 7, 8)),
    ("recursive_doubling", _recursive_doubling_allreduce, (2, 4, 8, 16)),
    ("rabenseifner", _rabenseifner_allreduce, (2, 4, 8, 16)),
])
def test_simulated_allreduce_matches_the_cost_terms(algorithm, run, ps):
    rng = np.random.default_rng(0)
    for p in ps:
        n = 48 * p  # divisible into p chunks and into halvings
        vectors = [rng.normal(size=n) for _ in range(p)]
        result, rounds, sent, reduced = run(vectors)
        expected = np.sum(vectors, axis=0)
        for r in range(p):
            np.testing.assert_allclose(result[r], expected, rtol=1e-12, atol=1e-12)
        terms = C.cost_terms("allreduce", algorithm, p)
        assert rounds == terms.messages
        assert sent == pytest.approx(terms.bytes_factor * n)
        assert reduced == pytest.approx(terms.reduced_factor * n)


# ---------------------------------------------------------------------------------------------
# Lower bounds and crossovers
# ---------------------------------------------------------------------------------------------

def test_no_algorithm_beats_the_lower_bound():
    rng = np.random.default_rng(1)
    for op, algs in C.ALGORITHMS.items():
        for alg in algs:
            for p in range(1, 34):
                if (op, alg) in C.POWER_OF_TWO and p & (p - 1):
                    continue
                for _ in range(3):
                    n, a, b, g = 10 ** rng.uniform(0, 9), 10 ** rng.uniform(-7, -4), \
                        10 ** rng.uniform(-12, -8), 10 ** rng.uniform(-13, -9)
                    t = C.collective_time(op, alg, n, p, a, b, g)
                    assert t >= C.lower_bound(op, n, p, a, b, g).total * (1 - 1e-12), (op, alg, p)


def test_ring_allreduce_meets_the_bandwidth_bound_and_recursive_doubling_the_latency_bound():
    lb = C.lower_bound("allreduce", N, 8, ALPHA, BETA, GAMMA)
    assert lb.latency == 3 * ALPHA and lb.bandwidth == pytest.approx(1.75 * N * BETA)
    assert lb.compute == pytest.approx(0.875 * N * GAMMA)
    ring = C.cost_terms("allreduce", "ring", 8)
    assert ring.bytes_factor * N * BETA == pytest.approx(lb.bandwidth)
    rd = C.cost_terms("allreduce", "recursive_doubling", 8)
    assert rd.messages * ALPHA == lb.latency
    assert C.lower_bound("broadcast", N, 4, ALPHA, BETA).bandwidth == N * BETA
    assert C.lower_bound("broadcast", N, 1, ALPHA, BETA).total == 0
    # a permute reaches one rank only: one message, n bytes, met by the direct send
    lb = C.lower_bound("permute", N, 8, ALPHA, BETA)
    assert (lb.latency, lb.bandwidth) == (ALPHA, pytest.approx(N * BETA))
    assert C.collective_time("permute", "direct", N, 8, ALPHA, BETA) == pytest.approx(lb.total)


def test_crossover_is_where_the_two_costs_are_equal():
    for op, a, b, p in (("allreduce", "recursive_doubling", "ring", 8),
                        ("allreduce", "tree", "ring", 16), ("allreduce", "recursive_doubling", "rabenseifner", 64),
                        ("broadcast", "tree", "scatter_allgather", 32)):
        n = C.crossover_bytes(op, a, b, p, ALPHA, BETA, GAMMA)
        assert n is not None and n > 0
        ta = C.collective_time(op, a, n, p, ALPHA, BETA, GAMMA)
        assert ta == pytest.approx(C.collective_time(op, b, n, p, ALPHA, BETA, GAMMA), rel=1e-9)
        # fewer messages wins below, fewer bytes above
        assert C.collective_time(op, a, n / 2, p, ALPHA, BETA, GAMMA) < C.collective_time(op, b, n / 2, p, ALPHA, BETA, GAMMA)
        assert C.collective_time(op, a, n * 2, p, ALPHA, BETA, GAMMA) > C.collective_time(op, b, n * 2, p, ALPHA, BETA, GAMMA)
    # hand-worked: p = 8: doubling 3a + 3nb, ring 14a + 1.75nb -> n = 11a / 1.25b = 8800 bytes
    assert C.crossover_bytes("allreduce", "recursive_doubling", "ring", 8, ALPHA, BETA) == pytest.approx(8800)
    # parallel lines (the same bytes): no crossing
    assert C.crossover_bytes("allreduce", "rabenseifner", "ring", 8, ALPHA, BETA) is None
    assert C.crossover_bytes("allreduce", "ring", "ring", 8, ALPHA, BETA) is None


def test_fit_recovers_alpha_and_beta_from_exact_times():
    n = np.logspace(3, 9, 13)
    t = C.collective_time("allreduce", "ring", n, 8, 5e-6, 1 / 200e9)
    fit = C.fit_alpha_beta("allreduce", "ring", 8, n, t)
    assert fit.alpha == pytest.approx(5e-6, rel=1e-9) and fit.bandwidth == pytest.approx(200e9, rel=1e-9)
    assert fit.rms_relative_error < 1e-12 and fit.note == ""
    # a negative intercept is not hidden: alpha is fixed at 0 and the note says so
    fit = C.fit_alpha_beta("allgather", "ring", 4, [1e6, 2e6], [0.5e-3, 1.5e-3])
    assert fit.alpha == 0 and "alpha" in fit.note
    with pytest.raises(ValueError, match="two distinct sizes"):
        C.fit_alpha_beta("allreduce", "ring", 8, [1e6, 1e6], [1e-3, 1e-3])
    # exact data: no scatter, so no uncertainty; two points: the scatter is unknown
    fit = C.fit_alpha_beta("allreduce", "ring", 8, n, t)
    assert fit.alpha_stderr < 1e-12 * fit.alpha and fit.beta_stderr < 1e-12 * fit.beta
    fit = C.fit_alpha_beta("permute", "direct", 2, [1e3, 1e6], [2e-6, 1e-3])
    assert np.isnan(fit.alpha_stderr) and np.isnan(fit.beta_stderr)


def test_fit_standard_errors_match_the_scatter_of_repeated_fits():
    """The reported standard errors against the spread of the estimates over many noisy data sets
    (a Monte-Carlo check of the covariance formula, independent of it)."""
    rng = np.random.default_rng(7)
    n = np.logspace(2, 7, 12)
    true = C.collective_time("allgather", "ring", n, 8, 20e-6, 1 / 5e9)
    alphas, betas, a_err, b_err = [], [], [], []
    for _ in range(2000):
        t = true * (1 + 0.05 * rng.standard_normal(n.size))  # 5 % relative noise
        fit = C.fit_alpha_beta("allgather", "ring", 8, n, t)
        assert fit.note == ""
        alphas.append(fit.alpha), betas.append(fit.beta)
        a_err.append(fit.alpha_stderr), b_err.append(fit.beta_stderr)
    assert np.mean(alphas) == pytest.approx(20e-6, rel=0.02)
    assert np.mean(betas) == pytest.approx(1 / 5e9, rel=0.02)
    # the typical reported error is the observed spread, within the Monte-Carlo error
    assert np.median(a_err) == pytest.approx(np.std(alphas), rel=0.1)
    assert np.median(b_err) == pytest.approx(np.std(betas), rel=0.1)


# ---------------------------------------------------------------------------------------------
# nccl-tests
# ---------------------------------------------------------------------------------------------

def test_bus_bandwidth_factors_are_those_of_performance_md():
    for n in (1, 2, 8, 64):
        assert C.bus_bandwidth_factor("allreduce", n) == 2 * (n - 1) / n
        for op in ("reducescatter", "allgather", "alltoall"):
            assert C.bus_bandwidth_factor(op, n) == (n - 1) / n
        assert C.bus_bandwidth_factor("broadcast", n) == 1
        assert C.bus_bandwidth_factor("reduce", n) == 1
        assert C.bus_bandwidth_factor("permute", n) == 1  # nccl-tests' sendrecv: factor = 1
    assert C.bus_bandwidth_factor("allreduce", 8) == 1.75


def test_busbw_of_a_latency_free_ring_allreduce_is_the_link_rate():
    for p in (2, 3, 8, 64, 1000):
        for s in (1e3, 1e6, 1e9):
            t = C.collective_time("allreduce", "ring", s, p, 0.0, 1 / 450e9)
            assert C.bus_bandwidth("allreduce", s, t, p) == pytest.approx(450e9, rel=1e-12)
    # the same holds for the other bandwidth-optimal collectives
    for op, alg in (("allgather", "ring"), ("reducescatter", "ring"), ("alltoall", "pairwise")):
        t = C.collective_time(op, alg, 1e9, 8, 0.0, 1 / 450e9)
        assert C.bus_bandwidth(op, 1e9, t, 8) == pytest.approx(450e9)


def test_conversions_between_busbw_algbw_and_time_round_trip():
    s, n, bus = 2**30, 8, 370e9
    t = C.time_from_bus_bandwidth("allreduce", s, bus, n)
    assert t == pytest.approx(s * 1.75 / bus)
    assert C.bus_bandwidth("allreduce", s, t, n) == pytest.approx(bus)
    assert C.algorithm_from_bus_bandwidth("allreduce", bus, n) == pytest.approx(C.algorithm_bandwidth(s, t))
    with pytest.raises(ValueError, match="n=1"):
        C.time_from_bus_bandwidth("allreduce", s, bus, 1)


def test_nccl_size_is_per_rank_for_allreduce_and_whole_for_gathers():
    assert C.nccl_size_bytes("allreduce", 1000, 4, 8) == 4000
    assert C.nccl_size_bytes("permute", 1000, 4, 8) == 4000  # sendrecv: count * typesize
    assert C.nccl_size_bytes("broadcast", 1000, 2, 8) == 2000
    assert C.nccl_size_bytes("allgather", 1000, 4, 8) == 32000
    assert C.nccl_size_bytes("reducescatter", 1000, 4, 8) == 32000
    assert C.nccl_size_bytes("alltoall", 1000, 4, 8) == 32000


def test_bus_bandwidth_reproduces_the_published_a100_table():
    # nccl-tests prints time, algbw and busbw; recomputing busbw from time must give its column.
    sw = C.get_sweep("a100-allreduce-8")
    assert sw.op == "allreduce" and sw.ranks == 8 and len(sw.n_bytes) == 20
    for s, t, alg, bus in zip(sw.n_bytes, sw.seconds, sw.algbw, sw.busbw):
        assert C.algorithm_bandwidth(s, t) == pytest.approx(alg, abs=0.006e9, rel=2e-3)
        assert C.bus_bandwidth("allreduce", s, t, 8) == pytest.approx(bus, abs=0.006e9, rel=2e-3)


def test_the_ring_model_against_published_allreduce_measurements():
    # Model: ring all-reduce at the link's one-way line rate (links.toml), no latency. Published:
    # nccl-tests on 8x A100 and a ring run on 8x H200, 16 GiB. Expect the "~80 % of the wire" rule.
    for link, system in (("nvlink3", "A100"), ("nvlink4", "H200")):
        beta = 1 / C.get_link(link).bandwidth("device_bandwidth")
        (m,) = [m for m in C.measurements(link, "busbw") if system in m.system and "SHARP" not in m.method]
        t_model = C.collective_time("allreduce", "ring", m.n_bytes, m.ranks, 0.0, beta)
        t_measured = C.time_from_bus_bandwidth("allreduce", m.n_bytes, m.si, m.ranks)
        assert 0.75 < t_model / t_measured < 0.85, (link, t_model / t_measured)
    # a fit over the large-message half of the A100 sweep lands near the measured busbw, below the wire
    sw = C.get_sweep("a100-allreduce-8")
    big = np.array(sw.n_bytes) >= 2**26
    fit = C.fit_alpha_beta("allreduce", "ring", 8, np.array(sw.n_bytes)[big], np.array(sw.seconds)[big])
    assert 0.7 < fit.bandwidth / 300e9 < 0.85


# ---------------------------------------------------------------------------------------------
# Topologies
# ---------------------------------------------------------------------------------------------

def _torus_graph(dims):
    """Adjacency and the list of links of a torus: each chip links to the next along every
    dimension, wrap-around included (so a dimension of 2 has two links between its pair)."""
    nodes = list(itertools.product(*[range(k) for k in dims]))
    index = {v: i for i, v in enumerate(nodes)}
    edges = []
    for v in nodes:
        for d, k in enumerate(dims):
            if k == 1:
                continue
            w = list(v)
            w[d] = (w[d] + 1) % k
            edges.append((index[v], index[tuple(w)]))
    adj = {i: set() for i in range(len(nodes))}
    for a, b in edges:
        adj[a].add(b)
        adj[b].add(a)
    return adj, edges


def _bfs_distances(adj, start):
    dist = {start: 0}
    frontier = [start]
    while frontier:
        nxt = []
        for u in frontier:
            for w in adj[u]:
                if w not in dist:
                    dist[w] = dist[u] + 1
                    nxt.append(w)
        frontier = nxt
    return dist


@pytest.mark.parametrize("dims", [(8,), (7,), (2,), (4, 4), (3, 5), (2, 4), (4, 4, 4), (2, 3, 4), (16, 16)])
def test_torus_hops_match_breadth_first_search(dims):
    adj, _ = _torus_graph(dims)
    p = len(adj)
    all_d = [d for s in range(p) for t, d in _bfs_distances(adj, s).items() if t != s]
    topo = C.torus_topology(dims, 1e9, 1e-6)
    assert topo.diameter == max(all_d)
    assert topo.average_hops == pytest.approx(sum(all_d) / len(all_d))


@pytest.mark.parametrize("dims", [(2,), (8,), (4, 4), (2, 4), (2, 2, 4)])
def test_torus_bisection_matches_the_minimum_balanced_cut(dims):
    adj, edges = _torus_graph(dims)
    p = len(adj)
    best = min(sum(1 for a, b in edges if (a in half) != (b in half))
               for half in map(set, itertools.combinations(range(p), p // 2)) if 0 in half)
    assert C.torus_topology(dims, 1.0, 0.0).bisection_bandwidth == best


def test_switch_and_two_level_hops_and_bisection():
    sw = C.switch_topology(8, 450e9, 1e-6)
    assert (sw.diameter, sw.average_hops, sw.bisection_bandwidth) == (2, 2.0, 4 * 450e9)
    tl = C.two_level_topology(4, 8, 450e9, 50e9, 1e-6, 5e-6)
    assert tl.p == 32 and tl.bisection_bandwidth == 16 * 50e9
    assert C.two_level_topology(1, 8, 450e9, 50e9, 1e-6, 5e-6).bisection_bandwidth == 4 * 450e9


def test_torus_with_one_dimension_is_the_bidirectional_ring():
    b = 100e9
    for p in (2, 5, 8, 16):
        ring = C.ring_topology(p, b, ALPHA).allreduce_time(N)
        torus = C.torus_topology((p,), b, ALPHA).allreduce_time(N)
        assert ring == torus
        # by hand: 2(p-1) messages; each direction of the ring carries half: (p-1)/p n / b
        assert ring == pytest.approx(2 * (p - 1) * ALPHA + (p - 1) / p * N / b)
        assert C.torus_topology((p, 1), b, ALPHA).allreduce_time(N) == pytest.approx(ring)


def test_torus_allreduce_hand_worked_4x4():
    # 16 chips, 2 dimensions: latency 2*3 + 2*3 = 12 messages; bandwidth 2*(15/16)*n / (2*2*b)
    b = 50e9
    expected = 12 * ALPHA + 2 * 15 / 16 * N / (4 * b)
    assert C.torus_topology((4, 4), b, ALPHA).allreduce_time(N) == pytest.approx(expected)


def test_switch_allreduce_is_the_ring_at_the_device_rate():
    t = C.switch_topology(8, 450e9, ALPHA).allreduce_time(N, GAMMA)
    assert t == pytest.approx(14 * ALPHA + 1.75 * N / 450e9 + 0.875 * N * GAMMA)


def test_hierarchical_allreduce_reduces_to_flat_rings():
    a_in, b_in, a_out, b_out = 1e-6, 1 / 450e9, 5e-6, 1 / 50e9
    for g in (2, 4, 8):
        flat = C.collective_time("allreduce", "ring", N, g, a_in, b_in, GAMMA)
        assert C.hierarchical_allreduce_time(N, 1, g, a_in, b_in, a_out, b_out, GAMMA) == pytest.approx(flat)
        assert C.two_level_topology(1, g, 450e9, 50e9, a_in, a_out).allreduce_time(N, GAMMA) == pytest.approx(flat)
    for nodes in (2, 4, 16):
        flat = C.collective_time("allreduce", "ring", N, nodes, a_out, b_out, GAMMA)
        assert C.hierarchical_allreduce_time(N, nodes, 1, a_in, b_in, a_out, b_out, GAMMA) == pytest.approx(flat)


def test_hierarchical_allreduce_hand_worked_two_dgx_nodes():
    # 2 nodes x 8 GPUs, n = 1 GB, NVLink 450 GB/s, IB 50 GB/s per GPU, no latency:
    # inside: 2 * 7/8 * 1e9 / 450e9; across: 2 * 1/2 * (1e9 / 8) / 50e9
    t = C.hierarchical_allreduce_time(1e9, 2, 8, 0.0, 1 / 450e9, 0.0, 1 / 50e9)
    assert t == pytest.approx(1.75e9 / 450e9 + 0.125e9 / 50e9)
    # and it beats a flat ring whose every step crosses the slower network
    assert t < C.collective_time("allreduce", "ring", 1e9, 16, 0.0, 1 / 50e9)


# ---------------------------------------------------------------------------------------------
# Parallelism
# ---------------------------------------------------------------------------------------------

CFG = C.layer_shape(d_model=1024, n_heads=16, n_kv_heads=16, d_ff=4096, n_layers=8)


def test_layer_flops_agree_with_the_decoder_module():
    batch, seq = 2, 128
    ops = decoder.layer_ops(CFG, batch=batch, context=seq, phase="prefill")
    mm = sum(op.flops for op in ops if op.kind in ("matmul", "attention"))
    assert C.layer_flops(CFG, batch, seq, training=False) == pytest.approx(mm)
    assert C.layer_flops(CFG, batch, seq, training=True) == pytest.approx(3 * mm)


def test_megatron_allreduce_counts_and_bytes():
    inf = C.tensor_parallel(CFG, 4, 2, 128, 1e15, ALPHA, BETA, bytes_per_value=2, training=False)
    train = C.tensor_parallel(CFG, 4, 2, 128, 1e15, ALPHA, BETA, bytes_per_value=2, training=True)
    assert inf.allreduces_per_layer == 2 and train.allreduces_per_layer == 4
    assert inf.bytes_per_allreduce == 2 * 128 * 1024 * 2
    one = C.collective_time("allreduce", "ring", 2 * 128 * 1024 * 2, 4, ALPHA, BETA)
    assert inf.comm_time == pytest.approx(2 * one) and train.comm_time == pytest.approx(4 * one)
    assert train.compute_time == pytest.approx(C.layer_flops(CFG, 2, 128) / 4 / 1e15)
    solo = C.tensor_parallel(CFG, 1, 2, 128, 1e15, ALPHA, BETA)
    assert solo.comm_time == 0 and solo.comm_to_compute == 0
    with pytest.raises(ValueError, match="tp=3"):
        C.tensor_parallel(CFG, 3, 2, 128, 1e15, ALPHA, BETA)


def test_largest_tensor_parallel_degree_follows_the_closed_form():
    # alpha = 0, training: comm = 4 * 2(t-1)/t * X * beta, compute = F / (t * peak)
    # comm <= compute  <=>  t <= 1 + F / (8 * X * beta * peak)
    cfg = C.layer_shape(d_model=4096, n_heads=64, n_kv_heads=8, d_ff=16384, n_layers=1)
    batch, seq, peak = 1, 2048, 1e15
    x = batch * seq * 4096 * 2
    f = C.layer_flops(cfg, batch, seq)
    for beta in (1 / 450e9, 1 / 100e9, 1 / 25e9, 1 / 5e9):
        bound = 1 + f / (8 * x * beta * peak)
        expected = max([t for t in range(1, 65) if 64 % t == 0 and 16384 % t == 0 and t <= bound])
        got = C.max_tensor_parallel(cfg, batch, seq, peak, 0.0, beta)
        assert got == expected, (beta, bound)
        cost = C.tensor_parallel(cfg, got, batch, seq, peak, 0.0, beta)
        assert cost.comm_time <= cost.compute_time
    assert C.max_tensor_parallel(cfg, batch, seq, peak, 0.0, 1 / 450e9) > C.max_tensor_parallel(cfg, batch, seq, peak, 0.0, 1 / 25e9)


def test_pipeline_bubble_closed_form_and_schedule():
    assert C.pipeline_bubble(4, 8) == pytest.approx(3 / 11)
    assert C.pipeline_bubble(1, 8) == 0
    for p, m in ((2, 1), (4, 4), (8, 32), (3, 7)):
        # GPipe forward: microbatch j runs on stage i in slot i + j
        slots = m + p - 1
        busy = np.zeros((p, slots), bool)
        for i in range(p):
            for j in range(m):
                busy[i, i + j] = True
        assert C.pipeline_bubble(p, m) == pytest.approx(1 - busy.mean())


def test_pipeline_costs():
    pp = C.pipeline_parallel(CFG, 4, 8, 2, 128, 1e15, ALPHA, BETA, bytes_per_value=2, training=True)
    assert pp.bytes_per_boundary == 2 * 128 * 1024 * 2
    assert pp.p2p_time == pytest.approx(ALPHA + pp.bytes_per_boundary * BETA)
    per_mb = 2 * C.layer_flops(CFG, 2, 128) / 1e15  # 8 layers / 4 stages
    assert pp.compute_time == pytest.approx(8 * per_mb)
    assert pp.comm_time == pytest.approx(8 * 2 * pp.p2p_time)
    assert pp.step_time == pytest.approx(11 * (per_mb + 2 * pp.p2p_time))
    assert pp.bubble_fraction == pytest.approx(3 / 11)
    with pytest.raises(ValueError, match="stages=3"):
        C.pipeline_parallel(CFG, 3, 8, 2, 128, 1e15, ALPHA, BETA)


def test_data_parallel_overlap_model():
    params, dp, tokens, peak = 10**9, 8, 4096, 1e15
    backward = 4 * params * tokens / peak  # 16.4 ms
    # fast network: every bucket but the last hides behind the backward pass
    fast = C.data_parallel(params, dp, tokens, peak, 0.0, 1 / 450e9, bytes_per_grad=2, buckets=10)
    assert fast.grad_bytes == 2e9
    assert fast.bucket_time == pytest.approx(1.75 * 2e8 / 450e9)
    assert fast.bucket_time < backward / 10
    assert fast.exposed_time == pytest.approx(fast.bucket_time)
    assert fast.comm_time == pytest.approx(C.collective_time("allreduce", "ring", 2e9, 8, 0.0, 1 / 450e9))
    # slow network: the buckets queue up; exposed = B * t_b - backward * (1 - 1/B)
    slow = C.data_parallel(params, dp, tokens, peak, 0.0, 1 / 5e9, bytes_per_grad=2, buckets=10)
    assert slow.bucket_time > backward / 10
    assert slow.exposed_time == pytest.approx(10 * slow.bucket_time - backward * 0.9)
    assert slow.step_time == pytest.approx(slow.compute_time + slow.exposed_time)
    assert slow.compute_time == pytest.approx(6 * params * tokens / peak)
    # one bucket: nothing overlaps
    one = C.data_parallel(params, dp, tokens, peak, 0.0, 1 / 450e9, buckets=1)
    assert one.exposed_time == pytest.approx(one.comm_time)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="n_bytes"):
        C.collective_time("allreduce", "ring", -1, 4, ALPHA, BETA)
    with pytest.raises(ValueError, match="beta"):
        C.collective_time("allreduce", "ring", N, 4, ALPHA, float("nan"))
    with pytest.raises(ValueError, match="p=True"):
        C.collective_time("allreduce", "ring", N, True, ALPHA, BETA)
    with pytest.raises(TypeError, match="config"):
        C.tensor_parallel("llama", 2, 1, 16, 1e15, ALPHA, BETA)
    with pytest.raises(ValueError, match="dims"):
        C.torus_topology((4, 4, 4, 4), 1e9, 1e-6)
    with pytest.raises(ValueError, match="link_bandwidth"):
        C.ring_topology(8, 0.0, 1e-6)


# ---------------------------------------------------------------------------------------------
# Serving across chips: the tensor-parallel decode step and the devices a model needs
# ---------------------------------------------------------------------------------------------

def _toy():
    # d = 64, 8 query heads of 8, 2 KV heads, MLP 256, 4 layers, vocabulary 100
    return decoder.DecoderConfig("toy", 64, 8, 2, 256, n_layers=4, vocab_size=100)


def test_tp_decode_step_by_hand():
    cfg = _toy()
    # parameters: per layer q,o 64*64 each, k,v 64*16 each, MLP 3*64*256, two norms of 64
    per_layer = 2 * 64 * 64 + 2 * 64 * 16 + 3 * 64 * 256 + 2 * 64
    params = 4 * per_layer + 100 * 64 * 2 + 64  # untied embedding and LM head, final norm
    assert kvcache.weight_params(cfg) == params
    batch, ctx, peak, bw, a, b = 4, 32, 1e12, 1e11, 1e-6, 1e-9
    one = C.tp_decode_step(cfg, 1, batch, ctx, peak, bw, a, b)
    kv = 4 * 2 * 16 * 2 * batch * ctx  # layers x (K,V) x kv width x bytes x tokens
    flops = 2 * params * batch + 4 * 4 * 8 * 8 * ctx * batch  # weights + attention (4 h d_h c per layer)
    assert one.memory_time == pytest.approx((2 * params + kv) / bw)
    assert one.compute_time == pytest.approx(flops / peak)
    assert one.comm_time == 0 and one.step_time == pytest.approx(one.memory_time)
    assert one.tokens_per_s == pytest.approx(batch / one.memory_time)
    two = C.tp_decode_step(cfg, 2, batch, ctx, peak, bw, a, b)
    # each device: half the weights, one of the two KV heads; 2 ring all-reduces per layer of b*d*2 bytes
    assert two.memory_time == pytest.approx((params + kv / 2) / bw)
    ar = 2 * a + 1.0 * (batch * 64 * 2) * b  # ring, p = 2: 2(p-1) messages, 2(p-1)/p of n
    assert two.comm_time == pytest.approx(8 * ar)
    assert two.allreduces == 8 and two.allreduce_bytes == batch * 64 * 2
    # past the KV heads the cache is copied, not split further
    four = C.tp_decode_step(cfg, 4, batch, ctx, peak, bw, a, b)
    assert four.kv_bytes_per_device == pytest.approx(kv / 2)
    assert four.tokens_per_s_per_device == pytest.approx(four.tokens_per_s / 4)
    # "best" is the fastest allowed algorithm: recursive doubling at this tiny message
    best = C.tp_decode_step(cfg, 4, batch, ctx, peak, bw, a, b, algorithm="best")
    rd = C.tp_decode_step(cfg, 4, batch, ctx, peak, bw, a, b, algorithm="recursive_doubling")
    assert best.comm_time == pytest.approx(rd.comm_time) and rd.comm_time < four.comm_time
    # 8-bit weights halve the weight bytes
    q = C.tp_decode_step(cfg, 2, batch, ctx, peak, bw, a, b, bytes_per_param=1)
    assert q.weight_bytes_per_device == pytest.approx(two.weight_bytes_per_device / 2)
    with pytest.raises(ValueError, match="tp=3 must divide n_heads=8"):
        C.tp_decode_step(cfg, 3, batch, ctx, peak, bw, a, b)
    with pytest.raises(ValueError, match="algorithm"):
        C.tp_decode_step(cfg, 2, batch, ctx, peak, bw, a, b, algorithm="fastest")


def test_devices_needed_is_the_smallest_split_that_fits():
    cfg = _toy()
    params = kvcache.weight_params(cfg)
    kv = 4 * 2 * 16 * 2 * 4 * 32
    assert C.devices_needed(cfg, 2 * params + kv, 4, 32) == 1
    assert C.devices_needed(cfg, 2 * params + kv - 1, 4, 32) == 2
    assert C.devices_needed(cfg, params + kv / 2, 4, 32) == 2
    # 4 devices: a quarter of the weights but still half the cache (2 KV heads)
    assert C.devices_needed(cfg, params / 2 + kv / 2, 4, 32) == 4
    assert C.devices_needed(cfg, params / 2 + kv / 2, 4, 32, bytes_per_param=1) == 2
    with pytest.raises(ValueError, match="memory_capacity=.*needs"):
        C.devices_needed(cfg, 1000, 4, 32)


# ---------------------------------------------------------------------------------------------
# Each chip's links: chips.toml names them, links.toml holds them; the two files must agree
# ---------------------------------------------------------------------------------------------

def test_every_chip_names_links_that_exist_and_agree_with_its_own_specs():
    from accelbook import specs
    named = 0
    for chip in specs.chips():
        links = C.chip_links(chip)
        assert links.chip == chip.key
        if links.host is not None:
            named += 1
            # "PCIe Gen5 x16" in chips.toml is "PCIe 5.0 x16" in links.toml, and the one-way rates agree
            gen = chip.specs["host_link"].value.split("Gen")[1].split()[0]
            assert links.host.name == f"PCIe {gen}.0 x16", chip.key
            assert chip.value("host_link_bandwidth") == pytest.approx(
                links.host.bandwidth("link_bandwidth", "per direction"), rel=0.01), chip.key
        if links.scale_up is not None:
            named += 1
            per_link = chip.value("scaleup_link_bandwidth")
            if per_link is not None:  # one link, one direction, in both files
                assert links.scale_up.bandwidth("link_bandwidth", "per direction") == pytest.approx(per_link), chip.key
            both = chip.value("scaleup_bandwidth")
            if both is not None and "device_bandwidth" in links.scale_up.values:
                assert links.scale_up.bandwidth("device_bandwidth", "both directions") == pytest.approx(both), chip.key
        if links.scale_up_switch is not None:
            assert links.scale_up is not None and links.scale_up.family == "nvlink"
    assert named >= 15
    assert C.chip_links("h100-sxm").scale_out.key == "ib-ndr"
    assert C.chip_links("tpu-v5e").scale_out.family == "tpu-dcn"
    assert C.chip_links("t4").scale_up is None  # PCIe only


def test_chip_links_rejects_a_link_of_the_wrong_family(monkeypatch):
    from accelbook import specs
    chip = specs.get_chip("h100-sxm")
    bad = dict(chip.specs)
    bad["scaleup_link_key"] = dataclasses.replace(bad["scaleup_link_key"], value="ib-ndr")
    with pytest.raises(ValueError, match="scaleup_link_key = 'ib-ndr' is a infiniband link"):
        C.chip_links(dataclasses.replace(chip, specs=bad))
    bad["scaleup_link_key"] = dataclasses.replace(bad["scaleup_link_key"], value="nvlink9")
    with pytest.raises(ValueError, match="'nvlink9' is not a link of links.toml"):
        C.chip_links(dataclasses.replace(chip, specs=bad))
    with pytest.raises(KeyError, match="chip='warp-drive'"):
        C.chip_links("warp-drive")


def test_rail_aligned_rings_by_hand_and_at_the_edges():
    # 4 nodes x 8 GPUs, 1 GiB: the node's 8 rails of 50 GB/s (400 GB/s) bind before the 450 GB/s
    # NVLink: 2 * 31/32 * 2^30 B / 400 GB/s = 5.20 ms, plus 62 messages of the slower alpha
    n, a_in, a_out = 2**30, 1e-6, 5e-6
    t = C.rail_allreduce_time(n, 4, 8, a_in, 1 / 450e9, a_out, 1 / 50e9)
    assert t == pytest.approx(62 * 5e-6 + 2 * 31 / 32 * n / 400e9)
    # with 100 GB/s rails the node's NICs (800 GB/s) outrun one GPU's NVLink: NVLink binds
    t = C.rail_allreduce_time(n, 4, 8, a_in, 1 / 450e9, a_out, 1 / 100e9)
    assert t == pytest.approx(62 * 5e-6 + 2 * 31 / 32 * n / 450e9)
    # one node: the ring inside it; one GPU per node: the ring over the network
    assert C.rail_allreduce_time(n, 1, 8, a_in, 1 / 450e9, a_out, 1 / 50e9) == pytest.approx(
        C.collective_time("allreduce", "ring", n, 8, a_in, 1 / 450e9))
    assert C.rail_allreduce_time(n, 4, 1, a_in, 1 / 450e9, a_out, 1 / 50e9) == pytest.approx(
        C.collective_time("allreduce", "ring", n, 4, a_out, 1 / 50e9))
    # rails beat the naive single ring whose every hop crosses the network, by the rail count at most
    naive = C.collective_time("allreduce", "ring", n, 32, a_out, 1 / 50e9)
    rails = C.rail_allreduce_time(n, 4, 8, a_in, 1 / 450e9, a_out, 1 / 50e9)
    assert 1 < naive / rails <= 8
    with pytest.raises(ValueError, match="nodes"):
        C.rail_allreduce_time(n, 0, 8, a_in, 1e-12, a_out, 1e-11)


def test_every_algorithm_has_a_display_name():
    assert {a for algs in C.ALGORITHMS.values() for a in algs} <= set(C.ALGORITHM_NAMES)
    assert C.ALGORITHM_NAMES["tree"] == "binomial tree"


def test_fsdp_moves_one_and_a_half_all_reduces_and_alltoall_is_bounded_by_the_bisection():
    # 8 ranks, 1 MB weights and gradients, alpha 1 us, beta 1 ns/B: two ring all-gathers and one ring
    # reduce-scatter, each 7 messages and 7/8 of the bytes: 3 * (7 us + 0.875 ms)
    t = C.fsdp_comm_time(1e6, 1e6, 8, 1e-6, 1e-9)
    assert t == pytest.approx(3 * (7e-6 + 0.875e-3))
    ring_ar = C.collective_time("allreduce", "ring", 1e6, 8, 0.0, 1e-9)
    assert C.fsdp_comm_time(1e6, 1e6, 8, 0.0, 1e-9) == pytest.approx(1.5 * ring_ar)
    assert C.fsdp_comm_time(1e6, 1e6, 1, 1e-6, 1e-9) == 0.0
    # a ring of 8 with 10 GB/s links: the cut crosses 2 links, 20 GB/s one way; 8 ranks x 1 MB:
    # 4 ranks send 0.5 MB each across: 2 MB / 20 GB/s = 100 us
    ring = C.ring_topology(8, 10e9, 1e-6)
    assert ring.bisection_bandwidth == pytest.approx(20e9)
    assert C.alltoall_bisection_time(1e6, ring) == pytest.approx(100e-6)
    # the pairwise all-to-all on a full-bisection switch is never below the bound
    switch = C.switch_topology(8, 10e9, 1e-6)
    assert C.collective_time("alltoall", "pairwise", 1e6, 8, 0.0, 1e-10) >= C.alltoall_bisection_time(1e6, switch)
    with pytest.raises(TypeError, match="topology"):
        C.alltoall_bisection_time(1e6, "ring")
