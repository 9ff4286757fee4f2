package muclight

import (
	"strings"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
)

func occ(spec string) []storage.MUCLightOccupant {
	var out []storage.MUCLightOccupant
	for _, f := range strings.Fields(spec) {
		u, a, _ := strings.Cut(f, "=")
		out = append(out, storage.MUCLightOccupant{User: jid.MustParse(u + "@x"), Affiliation: storage.MUCLightAffiliation(a)})
	}
	return out
}

func reqs(spec string) []Change {
	var out []Change
	for _, o := range occ(spec) {
		out = append(out, Change{User: o.User, Aff: o.Affiliation})
	}
	return out
}

func showChanges(cs []Change) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, c.User.Local()+"="+string(c.Aff))
	}
	return strings.Join(parts, " ")
}

func showMembers(ms []storage.MUCLightOccupant) string {
	var parts []string
	for _, m := range ms {
		parts = append(parts, m.User.Local()+"="+string(m.Affiliation))
	}
	return strings.Join(parts, " ")
}

// TestRules: the affiliation rules of muclight.md "Members", one case per
// rule, in the default mode (single owner, only owners invite, a member
// promoted when the last owner leaves) unless the case says otherwise.
func TestRules(t *testing.T) {
	def := Rules{PromoteOnLastOwnerLeave: true}
	for _, tc := range []struct {
		name      string
		rules     Rules
		members   string
		by        string
		req       string
		creating  bool
		blocked   string
		changes   string // or the error condition
		after     string
		errString string
	}{
		{name: "4-user example: add, promote, kick, implied demotion", rules: def, members: "crone=owner hag66=member hag77=member", by: "crone",
			req: "hag88=member hag66=owner hag77=none", changes: "hag88=member hag66=owner hag77=none crone=member", after: "crone=member hag66=owner hag88=member"},
		{name: "member leaves", rules: def, members: "a=owner b=member", by: "b", req: "b=none", changes: "b=none", after: "a=owner"},
		{name: "member kicks", rules: def, members: "a=owner b=member c=member", by: "b", req: "c=none", errString: "not-allowed"},
		{name: "member invites", rules: def, members: "a=owner b=member", by: "b", req: "c=member", errString: "not-allowed"},
		{name: "member invites, all_can_invite", rules: Rules{AllCanInvite: true}, members: "a=owner b=member", by: "b", req: "c=member", changes: "c=member", after: "a=owner b=member c=member"},
		{name: "member makes owner, all_can_invite", rules: Rules{AllCanInvite: true}, members: "a=owner b=member", by: "b", req: "c=owner", errString: "not-allowed"},
		{name: "member promotes self", rules: def, members: "a=owner b=member", by: "b", req: "b=owner", errString: "not-allowed"},
		{name: "no change", rules: def, members: "a=owner b=member", by: "a", req: "b=member", errString: "bad-request"},
		{name: "remove a non-member", rules: def, members: "a=owner", by: "a", req: "z=none", errString: "bad-request"},
		{name: "named twice", rules: def, members: "a=owner", by: "a", req: "b=member b=owner", errString: "bad-request"},
		{name: "two new owners, single owner", rules: def, members: "a=owner b=member c=member", by: "a", req: "b=owner c=owner", errString: "bad-request"},
		{name: "two new owners, multiple owners", rules: Rules{MultipleOwners: true}, members: "a=owner b=member c=member", by: "a", req: "b=owner c=owner", changes: "b=owner c=owner", after: "a=owner b=owner c=owner"},
		{name: "owner leaves naming a successor", rules: Rules{}, members: "a=owner b=member c=member", by: "a", req: "a=none c=owner", changes: "a=none c=owner", after: "b=member c=owner"},
		{name: "owner leaves, successor picked", rules: def, members: "a=owner c=member b=member", by: "a", req: "a=none", changes: "a=none b=owner", after: "b=owner c=member"},
		{name: "owner leaves, refused", rules: Rules{}, members: "a=owner b=member", by: "a", req: "a=none", errString: "not-allowed"},
		{name: "owner demotes self", rules: def, members: "a=owner b=member", by: "a", req: "a=member", changes: "a=member b=owner", after: "a=member b=owner"},
		{name: "last member leaves", rules: def, members: "a=owner", by: "a", req: "a=none", changes: "a=none", after: ""},
		{name: "blocked newcomer skipped", rules: def, members: "a=owner", by: "a", req: "b=member c=member", blocked: "b", changes: "c=member", after: "a=owner c=member"},
		{name: "all skipped", rules: def, members: "a=owner", by: "a", req: "b=member", blocked: "b", changes: "", after: "a=owner"},
		{name: "equal: no owners", rules: Rules{EqualOccupants: true, AllCanInvite: true}, members: "a=member b=member", by: "a", req: "b=owner", errString: "not-allowed"},
		{name: "equal: invite", rules: Rules{EqualOccupants: true, AllCanInvite: true}, members: "a=member", by: "a", req: "b=member", changes: "b=member", after: "a=member b=member"},
		{name: "equal: last leaves nobody promoted", rules: Rules{EqualOccupants: true, PromoteOnLastOwnerLeave: true}, members: "a=member b=member", by: "a", req: "a=none", changes: "a=none", after: "b=member"},
		{name: "max occupants", rules: Rules{MaxOccupants: 2}, members: "a=owner b=member", by: "a", req: "c=member", errString: "not-allowed"},
		{name: "max occupants lowered: removals still allowed", rules: Rules{MaxOccupants: 1}, members: "a=owner b=member c=member", by: "a", req: "c=none", changes: "c=none", after: "a=owner b=member"},
		{name: "create: another owner demotes the creator", rules: def, members: "a=owner", by: "a", creating: true, req: "b=owner c=member", changes: "b=owner c=member a=member", after: "a=member b=owner c=member"},
		{name: "create: members", rules: def, members: "a=owner", by: "a", creating: true, req: "b=member", changes: "b=member", after: "a=owner b=member"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blocked := map[string]bool{}
			for _, b := range strings.Fields(tc.blocked) {
				blocked[b] = true
			}
			out, err := tc.rules.Apply(occ(tc.members), jid.MustParse(tc.by+"@x"), reqs(tc.req), tc.creating, func(u jid.JID) bool { return blocked[u.Local()] })
			if tc.errString != "" {
				if err == nil || string(err.Condition) != tc.errString {
					t.Fatalf("got %v (%s), want %s", err, showChanges(out.Changes), tc.errString)
				}
				return
			}
			if err != nil {
				t.Fatalf("error %v", err)
			}
			if got := showChanges(out.Changes); got != tc.changes {
				t.Errorf("changes %q, want %q", got, tc.changes)
			}
			if got := showMembers(out.Members); got != tc.after {
				t.Errorf("members %q, want %q", got, tc.after)
			}
		})
	}
}

// TestVersions: versions differ at every change, and from those of a
// room created again under the same name.
func TestVersions(t *testing.T) {
	seen := map[string]bool{}
	for room := range 20 {
		v := nextVersion("")
		for i := range 200 {
			if seen[v] {
				t.Fatalf("room %d change %d: version %s again", room, i, v)
			}
			seen[v] = true
			next := nextVersion(v)
			if !strings.HasPrefix(next, bigBase36(uint64(i+2))+"-") {
				t.Fatalf("version %s after %s", next, v)
			}
			v = next
		}
	}
	if v := nextVersion("garbage"); !strings.HasPrefix(v, "1-") {
		t.Fatalf("after an unknown version: %s", v)
	}
}

func bigBase36(n uint64) string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	if n == 0 {
		return "0"
	}
	var b []byte
	for n > 0 {
		b = append([]byte{digits[n%36]}, b...)
		n /= 36
	}
	return string(b)
}

func TestConfigValidate(t *testing.T) {
	if errs := DefaultConfig().Validate(); len(errs) != 0 {
		t.Fatal(errs)
	}
	bad := DefaultConfig()
	bad.Host = "a@b"
	bad.MaxOccupants = -1
	bad.RoomsPerPage = 0
	bad.CacheSize = 0
	bad.ConfigFields = []string{"roomname", "version", "a b"}
	if errs := bad.Validate(); len(errs) != 6 {
		t.Fatalf("%d errors: %v", len(errs), errs)
	}
}
