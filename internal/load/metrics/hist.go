// Package metrics holds what a load run measures: HDR histograms (which
// merge exactly, so that the results of several load processes combine
// into the histogram one process would have recorded), counters, and a
// timeline of one sample per second.
package metrics

import (
	"fmt"
	"sync"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds, in microseconds: 1 µs to 10 minutes. Totals keep 3
// significant digits (0.1 % error); the per-second histograms of the
// timeline keep 2 (1 %) so that a long run stays small in memory and in
// the result file.
const (
	MinMicros     = 1
	MaxMicros     = 10 * 60 * 1_000_000
	TotalSigFigs  = 3
	SecondSigFigs = 2
)

// shards spreads recording over several locks: every connection's reader
// records its own samples, and one lock would be contended.
const shards = 16

// NewHDR returns an empty histogram with the bounds above.
func NewHDR(sigfigs int) *hdr.Histogram { return hdr.New(MinMicros, MaxMicros, sigfigs) }

// Hist is a histogram safe for concurrent recording.
type Hist struct {
	sigfigs int
	shard   [shards]struct {
		mu sync.Mutex
		h  *hdr.Histogram
		_  [48]byte // to 64 bytes: the locks on separate cache lines (TestHistShardSize)
	}
}

// NewHist returns an empty Hist with sigfigs significant digits.
func NewHist(sigfigs int) *Hist {
	h := &Hist{sigfigs: sigfigs}
	for i := range h.shard {
		h.shard[i].h = NewHDR(sigfigs)
	}
	return h
}

// Record adds v (microseconds; clamped to the bounds) to the shard picked
// by key, typically the index of the connection recording.
func (h *Hist) Record(key int, v int64) {
	v = min(max(v, MinMicros), MaxMicros)
	s := &h.shard[uint(key)%shards]
	s.mu.Lock()
	s.h.RecordValue(v)
	s.mu.Unlock()
}

// Snapshot returns a merged copy of everything recorded.
func (h *Hist) Snapshot() *hdr.Histogram { return h.merge(false) }

// Take returns what was recorded since the last Take and empties h: the
// histogram of one interval.
func (h *Hist) Take() *hdr.Histogram { return h.merge(true) }

// merge merges the shards, emptying them with reset.
func (h *Hist) merge(reset bool) *hdr.Histogram {
	out := NewHDR(h.sigfigs)
	for i := range h.shard {
		s := &h.shard[i]
		s.mu.Lock()
		out.Merge(s.h)
		if reset {
			s.h.Reset()
		}
		s.mu.Unlock()
	}
	return out
}

// Encode writes h in the compressed, base64 HdrHistogram V2 format that
// every HdrHistogram implementation reads.
func Encode(h *hdr.Histogram) (string, error) {
	b, err := h.Encode(hdr.V2CompressedEncodingCookieBase)
	if err != nil {
		return "", fmt.Errorf("metrics: encode histogram: %w", err)
	}
	return string(b), nil
}

// Decode reads what Encode wrote; "" is an empty histogram.
func Decode(s string) (*hdr.Histogram, error) {
	if s == "" {
		return NewHDR(TotalSigFigs), nil
	}
	h, err := hdr.Decode([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("metrics: decode histogram: %w", err)
	}
	return h, nil
}

// MergeEncoded merges encoded histograms into one.
func MergeEncoded(sigfigs int, encoded ...string) (*hdr.Histogram, error) {
	out := NewHDR(sigfigs)
	for _, e := range encoded {
		h, err := Decode(e)
		if err != nil {
			return nil, err
		}
		if dropped := out.Merge(h); dropped != 0 {
			return nil, fmt.Errorf("metrics: merge: %d values out of range", dropped)
		}
	}
	return out, nil
}
