package engine

// AppAndRollout is appAndRollout, for the tests of package engine_test.
var AppAndRollout = appAndRollout
