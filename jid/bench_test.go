package jid

import "testing"

var benchInputs = []struct{ name, in string }{
	{"ascii-full", "juliet@example.com/balcony"},
	{"ascii-bare", "juliet@example.com"},
	{"ascii-domain", "example.com"},
	{"uppercase", "JuLiEt@Example.COM/Balcony"},
	{"nonascii-local", "\u03A3\u0391\u03A3@example.com/balcony"},
	{"idn-domain", "juliet@b\u00FCcher.example/balcony"},
}

func BenchmarkParse(b *testing.B) {
	for _, bb := range benchInputs {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(bb.in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseSlow measures the PRECIS/IDNA path for the same inputs.
func BenchmarkParseSlow(b *testing.B) {
	for _, bb := range benchInputs {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := parse(bb.in, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkBareEqual(b *testing.B) {
	x := MustParse("juliet@example.com/balcony")
	y := MustParse("juliet@example.com/garden")
	b.ReportAllocs()
	for b.Loop() {
		if !x.BareEqual(y) {
			b.Fatal("not equal")
		}
	}
}

func BenchmarkWithResource(b *testing.B) {
	x := MustParse("juliet@example.com")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := x.WithResource("balcony"); err != nil {
			b.Fatal(err)
		}
	}
}
