package dsl

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// The benchmarks behind two charges of the expression budget
// (docs/benchmarks.md, "Figures behind the code"):
//
//	go test -run '^$' -bench 'ZoneLoad|RegexpWorst' ./dsl

// BenchmarkZoneLoad is what zoneSteps pays for: a time zone read from the
// zone database.
func BenchmarkZoneLoad(b *testing.B) {
	for b.Loop() {
		if _, err := time.LoadLocation("Europe/Stockholm"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRegexpWorst is what matchSteps pays for: a match that follows
// many instructions for each byte of the text. It reports ns per byte and
// instruction.
func BenchmarkRegexpWorst(b *testing.B) {
	re := regexp.MustCompile(`[a-z]{50}q`)
	text := strings.Repeat("ab", 500)
	insts := progSize(`[a-z]{50}q`)
	b.ResetTimer()
	for b.Loop() {
		if re.MatchString(text) {
			b.Fatal("matched")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(text)*insts), "ns/byte·inst")
}
