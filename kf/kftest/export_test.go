package kftest

// AMRDurationForTest exposes the fake's own AMR frame walker (the 60 s voice rule, §9) to the
// external tests; users measure AMR with package media.
var AMRDurationForTest = amrDuration
