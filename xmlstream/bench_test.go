package xmlstream

import (
	"encoding/xml"
	"os"
	"testing"
	"time"
)

// benchFiles are realistic first-level elements, smallest first
// (testdata/bench, see testdata/corpus/README.md).
var benchFiles = []string{"chat", "presence-caps", "roster-push", "disco-info", "mam-result", "roster-1000"}

func benchData(b *testing.B, name string) []byte {
	data, err := os.ReadFile("testdata/bench/" + name + ".xml")
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkParse parses one first-level element per iteration into a tree,
// as a session's reader does.
func BenchmarkParse(b *testing.B) {
	for _, name := range benchFiles {
		data := benchData(b, name)
		b.Run(name, func(b *testing.B) {
			p := benchParser(b)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				parseOne(b, p, data)
			}
		})
	}
}

// benchParser returns a stream parser past the stream header.
func benchParser(b *testing.B) *Parser {
	p := NewParser(ModeStream, Limits{MaxElementBytes: 1 << 20})
	p.Feed([]byte(testHeader))
	if ev, err := p.Next(); err != nil || ev.Kind != EventStreamOpen {
		b.Fatal(ev.Kind, err)
	}
	return p
}

// parseOne feeds p one first-level element and parses it.
func parseOne(b *testing.B, p *Parser, data []byte) {
	p.Feed(data)
	if ev, err := p.Next(); err != nil || ev.Kind != EventElement {
		b.Fatal(ev.Kind, err)
	}
	if ev, _ := p.Next(); ev.Kind != EventNone {
		b.Fatal(ev.Kind)
	}
}

// repeatReader yields a stream header once and then data forever, so that
// encoding/xml, like our parser, keeps one decoder for the whole stream.
type repeatReader struct {
	header, data []byte
	off          int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if len(r.header) > 0 {
		n := copy(p, r.header)
		r.header = r.header[n:]
		return n, nil
	}
	n := copy(p, r.data[r.off:])
	r.off = (r.off + n) % len(r.data)
	return n, nil
}

// BenchmarkEncodingXML decodes the same elements with encoding/xml into the
// equivalent tree (see stdElement): the baseline of BenchmarkParse.
func BenchmarkEncodingXML(b *testing.B) {
	for _, name := range benchFiles {
		data := benchData(b, name)
		b.Run(name, func(b *testing.B) {
			d := benchDecoder(b, data)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				decodeOne(b, d)
			}
		})
	}
}

// benchDecoder returns an encoding/xml decoder of the stream header then
// data forever, past the stream header.
func benchDecoder(b *testing.B, data []byte) *xml.Decoder {
	d := xml.NewDecoder(&repeatReader{header: []byte(testHeader), data: data})
	d.Strict = true
	for {
		tok, err := d.Token()
		if err != nil {
			b.Fatal(err)
		}
		if _, ok := tok.(xml.StartElement); ok {
			return d
		}
	}
}

// decodeOne decodes the next first-level element with d into the
// equivalent tree (stdElement).
func decodeOne(b *testing.B, d *xml.Decoder) {
	for {
		tok, err := d.Token()
		if err != nil {
			b.Fatal(err)
		}
		if start, ok := tok.(xml.StartElement); ok {
			if _, err := stdElement(d, start); err != nil {
				b.Fatal(err)
			}
			return
		}
	}
}

// BenchmarkSerialize writes a parsed element as a first-level element of a
// client stream into a reused buffer.
func BenchmarkSerialize(b *testing.B) {
	for _, name := range benchFiles {
		data := benchData(b, name)
		b.Run(name, func(b *testing.B) {
			els := parseElements(b, Limits{MaxElementBytes: 1 << 20}, wrap(data))
			var buf []byte
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				buf = els[0].AppendXML(buf[:0], StreamScope("jabber:client"))
			}
		})
	}
}

// BenchmarkSpeedup measures BenchmarkParse against BenchmarkEncodingXML in
// alternating rounds of the same process, each round long enough to
// parse about 256 KB with each, and reports the ratio of the fastest
// rounds ("x", the speed-up) with the MB/s of each. Alternating keeps the
// ratio meaningful on a machine shared with other work, where separate
// runs of the two benchmarks see different loads. Run it with
// -benchtime 100x or more: one iteration is one round.
func BenchmarkSpeedup(b *testing.B) {
	for _, name := range benchFiles {
		data := benchData(b, name)
		b.Run(name, func(b *testing.B) {
			p, d := benchParser(b), benchDecoder(b, data)
			ours := func() { parseOne(b, p, data) }
			std := func() { decodeOne(b, d) }
			n := max(1, 256<<10/len(data))
			best := [2]time.Duration{1 << 62, 1 << 62}
			for b.Loop() {
				for k, f := range []func(){ours, std} {
					start := time.Now()
					for range n {
						f()
					}
					best[k] = min(best[k], time.Since(start))
				}
			}
			mbs := func(d time.Duration) float64 { return float64(n*len(data)) / d.Seconds() / 1e6 }
			b.ReportMetric(float64(best[1])/float64(best[0]), "x")
			b.ReportMetric(mbs(best[0]), "MB/s")
			b.ReportMetric(mbs(best[1]), "std-MB/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
