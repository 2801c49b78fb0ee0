"""Election metrics in mongod's shapes (src/mongo/db/repl/replication_metrics.cpp and .idl):
``serverStatus().electionMetrics``, ``replSetGetStatus().electionCandidateMetrics`` (while this node is
candidate or primary) and ``replSetGetStatus().electionParticipantMetrics`` (after it voted).

Callers hold the node's lock.
"""

from __future__ import annotations

import datetime
from typing import Any

from bson.int64 import Int64

# StartElectionReason -> the electionMetrics counter it is counted under.
REASON_COUNTERS = {
    "stepUpRequest": "stepUpCmd",
    "stepUpRequestSkipDryRun": "stepUpCmd",
    "priorityTakeover": "priorityTakeover",
    "catchupTakeover": "catchUpTakeover",
    "electionTimeout": "electionTimeout",
    "singleNodePromptElection": "freezeTimeout",
}
_CATCH_UP_COUNTERS = (
    "numCatchUps",
    "numCatchUpsSucceeded",
    "numCatchUpsAlreadyCaughtUp",
    "numCatchUpsSkipped",
    "numCatchUpsTimedOut",
    "numCatchUpsFailedWithError",
    "numCatchUpsFailedWithNewTerm",
    "numCatchUpsFailedWithReplSetAbortPrimaryCatchUpCmd",
)


class ElectionMetrics:
    def __init__(self) -> None:
        self.called = {counter: 0 for counter in dict.fromkeys(REASON_COUNTERS.values())}
        self.successful = dict.fromkeys(self.called, 0)
        self.step_downs_caused_by_higher_term = 0
        self.catch_ups_already_caught_up = 0
        self.candidate: dict[str, Any] = {}
        self.participant: dict[str, Any] = {}

    # -- candidate side ----------------------------------------------------------------------------------------
    def election_called(self, reason: str, details: dict[str, Any]) -> None:
        self.called[REASON_COUNTERS[reason]] += 1
        self.candidate = {"lastElectionReason": reason, **details}

    def election_won(self, reason: str, term: int, now: datetime.datetime) -> None:
        self.successful[REASON_COUNTERS[reason]] += 1
        # The emulator has no catch-up phase: a new primary is always "already caught up".
        self.catch_ups_already_caught_up += 1
        self.candidate.update(electionTerm=Int64(term), numCatchUpOps=Int64(0), newTermStartDate=now)

    def write_majority_available(self, now: datetime.datetime) -> None:
        if self.candidate and "newTermStartDate" in self.candidate:
            self.candidate.setdefault("wMajorityWriteAvailabilityDate", now)

    def stepped_down(self, caused_by_higher_term: bool) -> None:
        """mongod clears the candidate metrics when the node stops being primary."""
        if caused_by_higher_term:
            self.step_downs_caused_by_higher_term += 1
        self.candidate = {}

    def election_lost(self) -> None:
        self.candidate = {}

    # -- participant side --------------------------------------------------------------------------------------
    def voted(self, details: dict[str, Any]) -> None:
        self.participant = dict(details)

    # -- documents ---------------------------------------------------------------------------------------------
    def server_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            counter: {"called": Int64(self.called[counter]), "successful": Int64(self.successful[counter])}
            for counter in self.called
        }
        status["numStepDownsCausedByHigherTerm"] = Int64(self.step_downs_caused_by_higher_term)
        for counter in _CATCH_UP_COUNTERS:
            status[counter] = Int64(0)
        status["numCatchUpsAlreadyCaughtUp"] = Int64(self.catch_ups_already_caught_up)
        status["averageCatchUpOps"] = 0.0
        return status
