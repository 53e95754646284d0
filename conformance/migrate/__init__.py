"""`conformance migrate`: a go / no-go answer for an application's own traffic.

traffic.py reads the requests (JSON Lines or HAR), features.py names the features they use and
the checks that decide each, verdicts.py judges them from a run's matrix, replay.py compares the
structure of a sample's answers between a reference and the candidate, report.py writes it all.
"""
