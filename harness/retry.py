"""One backoff for every retry loop: exponential, capped, with seeded jitter.

Instances that fail together (S3 down for the whole fleet) must not retry in lockstep, so each
delay is drawn between half and all of ``min(cap, base * 2**attempt)`` ("equal jitter": never
sooner than half the exponential delay). The jitter comes from a :class:`random.Random` the
caller seeds (:func:`seeded_random`), so a simulated run replays the same delays for the same
seed, while real instances, seeded with their own instance ids, spread out.

Loops differ in what they do between attempts (wait for a wake-up, give up at a deadline), so
the helper hands out delays and leaves the loop to its owner::

    backoff = policy.backoff()
    while not await attempt():
        await clock.sleep(backoff.next())
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

#: 2**62 seconds is beyond any cap; larger exponents only risk float overflow.
_MAX_EXPONENT = 62


def seeded_random(*parts: object) -> random.Random:
    """A generator seeded from ``parts`` (a job seed, an instance id): the same parts, the same
    sequence, in every process (string seeds do not depend on hash randomisation)."""
    return random.Random("/".join(str(part) for part in parts))


@dataclass(frozen=True)
class RetryPolicy:
    """Where delays start (``base``), where they stop growing (``cap``), and the jitter source."""

    base: float = 1.0
    cap: float = 30.0
    rng: random.Random = field(default_factory=lambda: seeded_random("retry"), compare=False)

    def backoff(self) -> Backoff:
        """The delays of one retry loop, from the first."""
        return Backoff(self)


@dataclass
class Backoff:
    policy: RetryPolicy
    attempt: int = 0

    def next(self) -> float:
        """The delay before the next attempt: ``[c/2, c]`` for ``c = min(cap, base * 2**n)``."""
        exponent = min(self.attempt, _MAX_EXPONENT)
        ceiling = min(self.policy.cap, self.policy.base * 2.0**exponent)
        self.attempt += 1
        return ceiling / 2 + self.policy.rng.random() * ceiling / 2
