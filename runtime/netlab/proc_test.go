package netlab

import (
	"os"
	"testing"
	"time"
)

func TestProcUsageOfSelf(t *testing.T) {
	if _, err := ProcUsage(-1); err == nil {
		t.Error("ProcUsage(-1) succeeded")
	}
	before, err := ProcUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if before.RSS < 1<<20 || before.RSS > 4<<30 {
		t.Errorf("RSS %d bytes is implausible for a Go test binary", before.RSS)
	}
	// Burn CPU until the kernel accounts at least two ticks more.
	deadline := time.Now().Add(10 * time.Second)
	x := 0
	for time.Now().Before(deadline) {
		for i := range 1_000_000 {
			x += i
		}
		after, err := ProcUsage(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if after.CPU >= before.CPU+20*time.Millisecond {
			return
		}
	}
	t.Errorf("CPU time did not grow while spinning (x=%d)", x)
}
