package e2e

import (
	"slices"
	"time"
)

// Median is the middle of ds (the mean of the two middle values when
// their number is even), 0 when ds is empty; ds is left as it was.
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
