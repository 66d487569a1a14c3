"""Trivial task for the queue's own drain rate."""


def noop(n: int) -> int:
    return n
