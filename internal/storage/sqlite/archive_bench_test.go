package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
)

// archiveSize is the size of the benchmark archive; MEERKAT_BENCH_ARCHIVE
// changes it (the 1,000,000 of docs/benchmarks.md takes about a minute
// to fill). Under -short (the CI smoke run, make bench-smoke) it is 20,000.
func archiveSize(b *testing.B) int {
	if v := os.Getenv("MEERKAT_BENCH_ARCHIVE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1000 {
			b.Fatalf("MEERKAT_BENCH_ARCHIVE=%q: want a number of at least 1000", v)
		}
		return n
	}
	if testing.Short() {
		return 20_000
	}
	return 1_000_000
}

// BenchmarkArchiveQueries fills one user's archive (one message a second,
// with 200 peers) and measures the queries a phone makes, reporting the
// p50 and p99 of each (XEP-0313 issue: single-digit milliseconds at 1M),
// and the lookups behind the 'ids' field and the archive metadata.
func BenchmarkArchiveQueries(b *testing.B) {
	ctx := context.Background()
	n := archiveSize(b)
	s, err := Open(ctx, Options{Path: filepath.Join(b.TempDir(), "archive.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()

	owner := jid.MustParse("alice@example.com")
	const peers = 200
	peer := func(i int) jid.JID { return jid.MustParse(fmt.Sprintf("peer%03d@example.net/phone", i)) }
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	idOf := func(i int) uint64 { return uint64(base.Add(time.Duration(i)*time.Second).UnixMicro()) << 8 }
	rng := rand.New(rand.NewPCG(1, 2))

	start := time.Now()
	batch := make([]storage.ArchiveMessage, 0, 10_000)
	for i := range n {
		p := peer(rng.IntN(peers))
		batch = append(batch, storage.ArchiveMessage{
			ID: idOf(i), Owner: owner, With: p, Outgoing: i%2 == 0,
			Stanza: fmt.Sprintf("<message xmlns='jabber:client' from='%s' to='%s' type='chat' id='m%d'><body>Message number %d, about as long as a chat line usually is.</body><origin-id xmlns='urn:xmpp:sid:0' id='o%d'/></message>", p, owner, i, i, i),
		})
		if len(batch) == cap(batch) || i == n-1 {
			if err := s.AppendArchive(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	b.Logf("filled %d messages in %v", n, time.Since(start).Round(time.Millisecond))

	run := func(name string, fn func(i int) error) {
		b.Run(name, func(b *testing.B) {
			var times []time.Duration
			i := 0
			for b.Loop() {
				t0 := time.Now()
				if err := fn(i); err != nil {
					b.Fatal(err)
				}
				times = append(times, time.Since(t0))
				i++
			}
			slices.Sort(times)
			pct := func(p float64) float64 {
				return float64(times[min(len(times)-1, int(p*float64(len(times))))].Microseconds()) / 1000
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
		})
	}
	page := func(q storage.ArchiveQuery) (storage.ArchivePage, error) {
		q.Owner, q.Max = owner, 50
		p, err := s.QueryArchive(ctx, q)
		if err == nil && len(p.Messages) != 50 {
			err = fmt.Errorf("a page of %d messages", len(p.Messages))
		}
		return p, err
	}

	run("newest-page", func(int) error {
		_, err := page(storage.ArchiveQuery{Last: true})
		return err
	})
	run("page-with", func(i int) error {
		_, err := page(storage.ArchiveQuery{With: peer(i % peers).Bare(), Last: true})
		return err
	})
	run("time-range", func(i int) error {
		// An hour somewhere in the archive.
		from := rng.IntN(n - 3600)
		_, err := page(storage.ArchiveQuery{MinID: idOf(from), MaxID: idOf(from + 3600)})
		return err
	})
	// The 250 ids of a query's 'ids' field (its maximum), somewhere in
	// the archive, looked up together (ArchiveMissing, what the module
	// does) and one by one (ArchiveMissing of one id each, what a cursor is).
	idSets := make([][]uint64, 16)
	for i := range idSets {
		for range 250 {
			idSets[i] = append(idSets[i], idOf(rng.IntN(n)))
		}
	}
	run("ids-250", func(i int) error {
		missing, err := s.ArchiveMissing(ctx, owner, idSets[i%len(idSets)])
		if err == nil && len(missing) != 0 {
			err = fmt.Errorf("%d ids missing", len(missing))
		}
		return err
	})
	run("ids-250-one-by-one", func(i int) error {
		for _, id := range idSets[i%len(idSets)] {
			if missing, err := s.ArchiveMissing(ctx, owner, []uint64{id}); err != nil || len(missing) != 0 {
				return fmt.Errorf("id %d: missing %v, %v", id, missing, err)
			}
		}
		return nil
	})
	run("bounds", func(int) error {
		first, last, ok, err := s.ArchiveBounds(ctx, owner)
		if err == nil && (!ok || first != idOf(0) || last != idOf(n-1)) {
			err = fmt.Errorf("bounds %d %d %v", first, last, ok)
		}
		return err
	})
	run("10-pages-back", func(int) error {
		q := storage.ArchiveQuery{Last: true}
		for range 10 {
			p, err := page(q)
			if err != nil {
				return err
			}
			q.MaxID = p.Messages[0].ID - 1
		}
		return nil
	})
}

// BenchmarkAppendArchive stores batches of 500 messages, as the archive
// writer does under load. One operation is one message.
func BenchmarkAppendArchive(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, Options{Path: filepath.Join(b.TempDir(), "archive.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	owner := jid.MustParse("alice@example.com")
	with := jid.MustParse("bob@example.net/phone")
	stanza := "<message xmlns='jabber:client' from='bob@example.net/phone' to='alice@example.com' type='chat' id='m1'><body>About as long as a chat line usually is, give or take.</body></message>"
	batch := make([]storage.ArchiveMessage, 500)
	id := uint64(1)
	b.ReportAllocs()
	for b.Loop() {
		for i := range batch {
			batch[i] = storage.ArchiveMessage{ID: id, Owner: owner, With: with, Stanza: stanza}
			id++
		}
		if err := s.AppendArchive(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/msg")
}
