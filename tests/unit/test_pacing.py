"""The request pacer (pure: a fake clock)."""

from __future__ import annotations

from shared.providers.pacing import Pacer


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_call_past_the_limit_waits_for_the_window_to_slide() -> None:
    clock = FakeClock()
    pacer = Pacer(3, 60.0, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        assert pacer.wait() == 0.0
        clock.now += 1.0  # the request takes a second: it counts from its answer
        pacer.sent()
    assert clock.now == 3.0
    assert pacer.wait() == 58.0  # the first (answered at 1 s) leaves the window at 61 s
    pacer.sent()
    clock.now += 30.0  # 91 s: the 2nd (2 s) and 3rd (3 s) have left
    for _ in range(2):
        assert pacer.wait() == 0.0
        pacer.sent()
    assert pacer.wait() == 30.0  # the 4th (61 s) leaves at 121 s
    assert clock.slept == [58.0, 30.0]


def test_a_limit_of_zero_never_waits() -> None:
    clock = FakeClock()
    pacer = Pacer(0, 60.0, clock=clock, sleep=clock.sleep)
    for _ in range(1000):
        assert pacer.wait() == 0.0
        pacer.sent()
    assert clock.slept == []
