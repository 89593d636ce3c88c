"""Which question a Yes button answers (connectors/slack/questions.py): only its asker's,
and only their latest in that place."""

from __future__ import annotations

from connectors.slack.questions import KEPT, Questions

PLACE = ("C0123456789", None)


def test_a_yes_goes_through_only_on_its_askers_latest_question() -> None:
    """ann's `stop all` (q1) then `freeze all` (q2) in one place: a click on q2 goes to the
    desk; on q1 it is refused as replaced; bob's click on q2 is refused as ann's."""
    questions = Questions()
    questions.heard("100.1", "UANN0001")
    assert questions.asked("100.2", PLACE, "100.1", "stop all?") is None
    questions.heard("100.3", "UANN0001")
    assert questions.asked("100.4", PLACE, "100.3", "freeze all?") == "100.2"  # replaced
    assert questions.settled("100.2") == "stop all?"
    assert questions.settled("100.2") is None  # its buttons come off once
    assert questions.refusal("100.4", "UANN0001") is None
    assert "replaced by a newer one" in (questions.refusal("100.2", "UANN0001") or "")
    assert "UANN0001's" in (questions.refusal("100.4", "UBOB0001") or "")


def test_a_question_it_does_not_remember_is_left_to_the_desk() -> None:
    """A click on a message it never posted as a question (or forgot) is the desk's to
    judge; what it remembers is bounded."""
    questions = Questions()
    assert questions.refusal("1.1", "UANN0001") is None
    for n in range(KEPT + 10):
        questions.heard(f"{n}.0", "UANN0001")
        questions.asked(f"{n}.5", PLACE, f"{n}.0", "?")
    assert questions.refusal("0.5", "UANN0001") is None  # forgotten: the desk decides
    assert questions.refusal(f"{KEPT + 9}.5", "UANN0001") is None


def test_a_question_replaces_only_its_own_askers_in_the_same_place() -> None:
    """bob's question does not replace ann's; ann's in a thread does not replace hers in the
    channel; an answered question is not offered up again when a newer one comes."""
    questions = Questions()
    questions.heard("1.1", "UANN0001")
    questions.heard("2.1", "UBOB0001")
    questions.heard("3.1", "UANN0001")
    questions.heard("4.1", "UANN0001")
    assert questions.asked("1.2", PLACE, "1.1", "a") is None
    assert questions.asked("2.2", PLACE, "2.1", "b") is None  # bob's own
    assert questions.asked("3.2", ("C0123456789", "1.1"), "3.1", "c") is None  # a thread
    assert questions.settled("1.2") == "a"  # answered: its Yes came off
    assert questions.asked("4.2", PLACE, "4.1", "d") is None  # nothing left to take off
