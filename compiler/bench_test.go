package compiler

import (
	"fmt"
	"testing"

	"github.com/mwgc/mwgc/compiler/internal/benchrepo"
)

// BenchmarkLoad validates generated repositories; BenchmarkPlans adds
// building and encoding the plans. Compare with `cue vet` through
// `go run ./compiler/internal/vetbench`.
func BenchmarkLoad(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		dir := b.TempDir()
		if _, err := benchrepo.Generate(dir, n); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			for b.Loop() {
				res, err := Load([]string{dir})
				if err != nil || HasErrors(res.Findings) {
					b.Fatalf("%v %v", err, res.Findings)
				}
			}
		})
	}
}

func BenchmarkPlans(b *testing.B) {
	dir := b.TempDir()
	if _, err := benchrepo.Generate(dir, 1000); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		res, err := Load([]string{dir})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := res.Plans(); err != nil {
			b.Fatal(err)
		}
	}
}
