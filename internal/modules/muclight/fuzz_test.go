package muclight

import (
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// FuzzAffiliations: a client's affiliation request, parsed and applied to
// a room under every combination of the service options. Parsing and the
// rules never panic, and whatever they accept leaves a room that obeys
// the options (muclight.md "Rules").
func FuzzAffiliations(f *testing.F) {
	const ns = NSAffiliations
	for _, s := range []string{
		`<query xmlns='` + ns + `'><user affiliation='member'>dave@example.com</user><user affiliation='owner'>bob@example.com</user><user affiliation='none'>carol@example.com</user></query>`,
		`<query xmlns='` + ns + `'><user affiliation='none'>alice@example.com</user></query>`,
		`<query xmlns='` + ns + `'><user affiliation='owner'>alice@example.com</user></query>`,
		`<query xmlns='` + ns + `'><user affiliation='member'>x@y/z</user></query>`,
	} {
		for _, opts := range []uint8{0, 1, 2, 4, 8, 15} {
			f.Add(s, opts, false)
		}
	}
	alice, bob, carol := jid.MustParse("alice@example.com"), jid.MustParse("bob@example.com"), jid.MustParse("carol@example.com")
	f.Fuzz(func(t *testing.T, s string, opts uint8, byMember bool) {
		el, err := xmlstream.Parse([]byte(s))
		if err != nil {
			return
		}
		changes, err := parseUsers(el, true)
		if err != nil {
			return
		}
		rules := Rules{
			MultipleOwners: opts&1 != 0, AllCanInvite: opts&2 != 0, EqualOccupants: opts&4 != 0,
			PromoteOnLastOwnerLeave: opts&8 != 0, MaxOccupants: int(opts >> 4),
		}
		members := []storage.MUCLightOccupant{{User: alice, Affiliation: Owner}, {User: bob, Affiliation: Member}, {User: carol, Affiliation: Member}}
		if rules.EqualOccupants {
			members[0].Affiliation = Member
		}
		requester := alice
		if byMember {
			requester = bob
		}
		out, serr := rules.Apply(members, requester, changes, false, func(jid.JID) bool { return false })
		if serr != nil {
			return
		}
		owners, seen := 0, map[jid.JID]bool{}
		for _, m := range out.Members {
			if seen[m.User] {
				t.Fatalf("%s twice in %+v", m.User, out.Members)
			}
			seen[m.User] = true
			switch m.Affiliation {
			case Owner:
				owners++
			case Member:
			default:
				t.Fatalf("affiliation %q in %+v", m.Affiliation, out.Members)
			}
		}
		switch {
		case rules.EqualOccupants && owners > 0:
			t.Fatalf("owners in equal mode: %+v", out.Members)
		case !rules.MultipleOwners && owners > 1:
			t.Fatalf("%d owners in single-owner mode: %+v", owners, out.Members)
		case !rules.EqualOccupants && len(out.Members) > 0 && owners == 0:
			t.Fatalf("a room without an owner: %+v", out.Members)
		case rules.MaxOccupants > 0 && len(out.Members) > max(rules.MaxOccupants, len(members)):
			t.Fatalf("%d members over the limit %d", len(out.Members), rules.MaxOccupants)
		}
	})
}
