package mam

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

func TestIDsGrowWithTimeAndNeverRepeat(t *testing.T) {
	g := idGen{node: 7}
	now := time.Date(2026, 11, 24, 1, 2, 3, 4000, time.UTC)
	a := g.next(now)
	b := g.next(now)                       // the same microsecond
	c := g.next(now.Add(-time.Second))     // a clock stepping back
	d := g.next(now.Add(time.Millisecond)) // time goes on
	if !(a < b && b < c && c < d) {
		t.Fatalf("ids not increasing: %d %d %d %d", a, b, c, d)
	}
	for _, id := range []uint64{a, b, c, d} {
		if id&0xff != 7 {
			t.Errorf("id %x lost the node number", id)
		}
	}
	if !stampOf(a).Equal(now.Truncate(time.Microsecond)) {
		t.Errorf("stampOf = %v, want %v", stampOf(a), now)
	}
	if idAt(time.Unix(-5, 0)) != 0 {
		t.Error("times before 1970 must map to 0")
	}
	old := idGen{node: 1}
	if a, b := old.next(time.Unix(-5, 0)), old.next(time.Unix(-9, 0)); a != 1 || b != 1<<8|1 {
		t.Errorf("ids before 1970: %x %x, want 1 101", a, b)
	}
}

func TestIDCodec(t *testing.T) {
	c, err := newIDCodec([]byte("0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := newIDCodec([]byte("fedcba9876543210"))
	seen := map[string]bool{}
	for _, id := range []uint64{1, 2, 1 << 40, ^uint64(0)} {
		uid := c.encode(id)
		if seen[uid] || strings.ToLower(uid) != uid || len(uid) != 26 {
			t.Errorf("uid %q of %d", uid, id)
		}
		seen[uid] = true
		if got, ok := c.decode(uid); !ok || got != id {
			t.Errorf("decode(encode(%d)) = %d %v", id, got, ok)
		}
		if _, ok := other.decode(uid); ok {
			t.Errorf("a uid of another key decoded")
		}
	}
	for _, bad := range []string{"", "x", strings.Repeat("z", 26), strings.Repeat("0", 27), "!!!!!!!!!!!!!!!!!!!!!!!!!!"} {
		if _, ok := c.decode(bad); ok {
			t.Errorf("decode(%q) accepted", bad)
		}
	}
	if _, err := newIDCodec([]byte("short")); err == nil {
		t.Error("a short key was accepted")
	}
}

func parseStanza(t *testing.T, s string) *stanza.Stanza {
	t.Helper()
	el, err := xmlstream.Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	st, serr := stanza.Parse(el, stanza.NSClient)
	if serr != nil {
		t.Fatal(serr)
	}
	return &st
}

func TestArchivable(t *testing.T) {
	for _, tc := range []struct {
		xml  string
		want bool
	}{
		{`<message xmlns='jabber:client' type='chat'><body>hi</body></message>`, true},
		{`<message xmlns='jabber:client'><body>hi</body></message>`, true},
		{`<message xmlns='jabber:client' type='headline'><body>hi</body></message>`, false},
		{`<message xmlns='jabber:client' type='groupchat'><body>hi</body></message>`, false},
		{`<message xmlns='jabber:client' type='error'><body>hi</body></message>`, false},
		{`<message xmlns='jabber:client' type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>`, false},
		{`<message xmlns='jabber:client' type='chat'><body>hi</body><no-store xmlns='urn:xmpp:hints'/></message>`, false},
		{`<message xmlns='jabber:client' type='chat'><body>hi</body><no-permanent-store xmlns='urn:xmpp:hints'/></message>`, false},
		{`<message xmlns='jabber:client' type='chat'><store xmlns='urn:xmpp:hints'/></message>`, true},
		{`<message xmlns='jabber:client' type='chat'><encrypted xmlns='eu.siacs.conversations.axolotl'/></message>`, true},
		{`<message xmlns='jabber:client' type='chat'><retract xmlns='urn:xmpp:message-retract:1' id='x'/></message>`, true},
		{`<presence xmlns='jabber:client'/>`, false},
	} {
		if got := Archivable(parseStanza(t, tc.xml)); got != tc.want {
			t.Errorf("Archivable(%s) = %v", tc.xml, got)
		}
	}
}

func TestStanzaIDs(t *testing.T) {
	el, _ := xmlstream.Parse([]byte(`<message xmlns='jabber:client'><body>x</body>` +
		`<stanza-id xmlns='urn:xmpp:sid:0' by='bob@example.com' id='forged'/>` +
		`<stanza-id xmlns='urn:xmpp:sid:0' by='room@muc.example.com' id='kept'/></message>`))
	orig := el.String()
	got := addStanzaID(el, withoutStanzaID(el, "bob@example.com"), "bob@example.com", "real").String()
	want := `<message xmlns='jabber:client'><body>x</body><stanza-id xmlns='urn:xmpp:sid:0' by='room@muc.example.com' id='kept'/><stanza-id xmlns='urn:xmpp:sid:0' by='bob@example.com' id='real'/></message>`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if el.String() != orig {
		t.Error("the original element changed")
	}
	if withoutStanzaID(el, "alice@example.com") != el {
		t.Error("nothing to change must return the element itself")
	}
	if addStanzaID(el, el, "alice@example.com", "a"); el.String() != orig {
		t.Error("adding to a message with nothing removed changed the original")
	}
}

func TestMatchesAny(t *testing.T) {
	list := []jid.JID{jid.MustParse("alice@example.com"), jid.MustParse("carol@example.com/phone"), jid.MustParse("example.org")}
	for peer, want := range map[string]bool{
		"alice@example.com":        true,
		"alice@example.com/laptop": true,
		"carol@example.com/phone":  true,
		"carol@example.com/tablet": false,
		"carol@example.com":        false,
		"dave@example.org/x":       true,
		"dave@example.net":         false,
	} {
		if got := matchesAny(list, jid.MustParse(peer)); got != want {
			t.Errorf("matchesAny(%s) = %v", peer, got)
		}
	}
}

// hasEverything holds every id (ArchiveMissing); parsing touches
// nothing else.
type hasEverything struct{ Store }

func (hasEverything) ArchiveMissing(context.Context, jid.JID, []uint64) ([]uint64, error) {
	return nil, nil
}

// lookupCounter holds the ids in has and counts the lookups.
type lookupCounter struct {
	Store
	has  map[uint64]bool
	many int
}

func (c *lookupCounter) ArchiveMissing(_ context.Context, _ jid.JID, ids []uint64) ([]uint64, error) {
	c.many++
	var out []uint64
	for _, id := range ids {
		if !c.has[id] && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out, nil
}

// TestIDsFieldIsOneLookup: the UIDs of an 'ids' field (XEP-0313 §4.1.3)
// are looked up with one storage query, however many there are.
func TestIDsFieldIsOneLookup(t *testing.T) {
	codec, _ := newIDCodec([]byte("0123456789abcdef"))
	store := &lookupCounter{has: map[uint64]bool{}}
	m := &MAM{cfg: Config{DefaultPageSize: 50, MaxPageSize: 250}, store: store, codec: codec}
	owner := jid.MustParse("juliet@capulet.lit")
	var values strings.Builder
	var want []uint64
	for i := range maxIDs {
		id := uint64(1<<40 + i)
		store.has[id] = true
		want = append(want, id)
		values.WriteString("<value>" + codec.encode(id) + "</value>")
	}
	q, err := xmlstream.Parse([]byte(`<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'><field var='ids'>` + values.String() + `</field></x></query>`))
	if err != nil {
		t.Fatal(err)
	}
	aq, _, err := m.parseQuery(context.Background(), q, owner, NS)
	if err != nil || !slices.Equal(aq.IDs, want) {
		t.Fatalf("parseQuery: %v %v", aq.IDs, err)
	}
	if store.many != 1 {
		t.Errorf("%d ids: %d ArchiveMissing lookups, want 1", maxIDs, store.many)
	}
}

// FuzzQuery: queries and preferences come from clients. Parsing never
// panics, answers a *stanza.Error for what it refuses, and keeps what it
// accepts within the configured bounds.
func FuzzQuery(f *testing.F) {
	codec, _ := newIDCodec([]byte("0123456789abcdef"))
	uid := codec.encode(1 << 40)
	for _, s := range []string{
		`<query xmlns='urn:xmpp:mam:2' queryid='q'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field><field var='with'><value>juliet@capulet.lit</value></field><field var='start'><value>2010-06-07T00:00:00Z</value></field><field var='end'><value>2010-07-07T13:23:54.123456Z</value></field></x><set xmlns='http://jabber.org/protocol/rsm'><max>10</max><before/></set><flip-page/></query>`,
		`<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'><field var='after-id'><value>` + uid + `</value></field><field var='ids'><value>` + uid + `</value><value>x</value></field></x><set xmlns='http://jabber.org/protocol/rsm'><after>` + uid + `</after></set></query>`,
		`<query xmlns='urn:xmpp:mam:1'><set xmlns='http://jabber.org/protocol/rsm'><index>1</index></set></query>`,
		`<prefs xmlns='urn:xmpp:mam:2' default='roster'><always><jid>romeo@montague.lit</jid></always><never><jid>montague.lit</jid></never></prefs>`,
	} {
		f.Add(s)
	}
	m := &MAM{cfg: Config{Default: Always, DefaultPageSize: 50, MaxPageSize: 250}, store: hasEverything{}, codec: codec}
	owner := jid.MustParse("juliet@capulet.lit")
	f.Fuzz(func(t *testing.T, s string) {
		el, err := xmlstream.Parse([]byte(s))
		if err != nil {
			return
		}
		if el.Name == "prefs" {
			p, err := parsePrefs(el)
			if err == nil && (len(p.Always)+len(p.Never) > maxPrefsJIDs || p.Default != Always && p.Default != Never && p.Default != Roster) {
				t.Fatalf("accepted %+v", p)
			}
			return
		}
		q, _, err := m.parseQuery(context.Background(), el, owner, NS)
		if err != nil {
			var se *stanza.Error
			if !errors.As(err, &se) {
				t.Fatalf("not a stanza error: %v", err)
			}
			return
		}
		if q.Owner != owner || q.Max < 0 || q.Max > m.cfg.MaxPageSize || len(q.IDs) > maxIDs {
			t.Fatalf("accepted %s as %+v", s, q)
		}
	})
}
