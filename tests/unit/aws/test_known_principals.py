"""`KnownPrincipals`: the answers IAM gave about principals, shared by a run's stacks; one
question per principal, and only definite answers are kept."""

from __future__ import annotations

import threading

import pytest

from kmsplan.aws.known_principals import KnownPrincipals

ROLE = "arn:aws:iam::111122223333:role/app"


def test_a_definite_answer_is_asked_once_per_account_and_principal() -> None:
    known = KnownPrincipals()
    asked: list[str] = []

    def ask() -> bool:
        asked.append("?")
        return False

    assert known.answer("111122223333", ROLE, ask) is False
    assert known.answer("111122223333", ROLE, ask) is False
    assert known.answer("444455556666", ROLE, ask) is False  # another account: its own
    assert asked == ["?", "?"]


def test_an_answer_iam_could_not_give_is_asked_again() -> None:
    known = KnownPrincipals()
    answers = iter([None, True])
    assert known.answer("111122223333", ROLE, lambda: next(answers)) is None
    assert known.answer("111122223333", ROLE, lambda: next(answers)) is True


def test_a_failed_question_keeps_nothing_and_lets_the_next_ask() -> None:
    known = KnownPrincipals()

    def fail() -> bool:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        known.answer("111122223333", ROLE, fail)
    assert known.answer("111122223333", ROLE, lambda: True) is True


def test_stacks_asking_at_once_wait_for_the_first_answer() -> None:
    known = KnownPrincipals()
    asking = threading.Event()
    release = threading.Event()
    asked: list[int] = []

    def slow() -> bool:
        asked.append(1)
        asking.set()
        release.wait()
        return True

    results: list[bool | None] = []
    first = threading.Thread(target=lambda: results.append(known.answer("1", ROLE, slow)))
    first.start()
    asking.wait()  # the first stack is asking IAM now
    second = threading.Thread(target=lambda: results.append(known.answer("1", ROLE, slow)))
    second.start()
    release.set()
    first.join()
    second.join()
    assert results == [True, True]
    assert asked == [1]
