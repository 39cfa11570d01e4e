//go:build !race

package gzindex

const raceEnabled = false
