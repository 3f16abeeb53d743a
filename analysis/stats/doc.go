// Package stats holds the statistics canary analysis judges with: the Mann-Whitney U test
// of a canary's values against the baseline's.
//
// Start reading at MannWhitney (mannwhitney.go).
package stats
