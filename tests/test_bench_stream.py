"""bench.stream's steady-state CPU figure: CPU between the interval's two samples, divided by
the windows completed at the server within the interval (not before, not after); and its
count of the windows over the latency target, by when they came and whether they ended their
stream."""
import threading

from bench.stream import SteadyState


def test_steady_state_counts_only_the_windows_of_its_interval():
    steady = SteadyState(procs=[], audio_seconds=20.0)
    steady.since, steady.until = 100.0, 110.0
    steady.before = {"web": 1.0, "worker": 2.0}
    steady.after = {"web": 1.5, "worker": 3.0}

    steady._thread = threading.Thread(target=lambda: None)
    steady._thread.start()
    arrivals = [99.9, 100.0, 105.0, 109.99, 110.0, 120.0]  # three inside [100, 110)
    assert steady.per_window(arrivals) == {"web": round(500 / 3, 2), "worker": round(1000 / 3, 2),
                                           "stack": round(500 / 3, 2) + round(1000 / 3, 2)}


def test_steady_state_p99_leaves_out_the_first_and_last_windows():
    steady = SteadyState(procs=[], audio_seconds=20.0)
    steady.since, steady.until = 100.0, 110.0
    arrivals = [99.0, 99.5] + [100.0 + k * 0.05 for k in range(200)] + [110.0, 111.0]
    latencies = [900.0, 800.0] + [10.0] * 190 + [50.0] * 10 + [700.0, 600.0]
    assert steady.p99(latencies, arrivals) == 50.0  # the slow windows outside the interval are left out
    assert steady.p99([5.0], [120.0]) is None


def test_over_target_counts_the_slow_windows_by_when_they_came_and_whether_they_ended_a_stream():
    steady = SteadyState(procs=[], audio_seconds=20.0)
    steady.since, steady.until = 100.0, 110.0
    arrivals = [99.0, 99.5, 105.0, 105.0, 109.0, 110.0, 111.0]
    latencies = [400.0, 20.0, 151.0, 150.0, 149.9, 300.0, 200.0]
    last = [False, False, True, True, True, False, True]
    assert steady.over_target(latencies, arrivals, last) == {
        "windows_over_target": 4, "windows_over_target_at_start": 1, "windows_over_target_at_end": 2,
        "windows_over_target_last_of_stream": 2}
    assert steady.over_target([], [], []) == {
        "windows_over_target": 0, "windows_over_target_at_start": 0, "windows_over_target_at_end": 0,
        "windows_over_target_last_of_stream": 0}
