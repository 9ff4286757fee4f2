package register_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

const (
	NS        = "jabber:iq:register"
	NSFeature = "http://jabber.org/features/iq-register"
)

func start(t *testing.T, extra string) *servertest.Server {
	return servertest.Start(t, servertest.Modules("[modules.register]\nenabled = true\n"+extra))
}

// preAuth opens a stream, checks that nothing is offered before TLS but
// STARTTLS (c2s.require_tls), negotiates TLS and returns the stream and
// the features offered on it before authentication.
func preAuth(t *testing.T, srv *servertest.Server) (*story.Raw, *xmlstream.Element) {
	t.Helper()
	r, err := story.DialRaw(context.Background(), srv, story.TCP)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	f, err := r.OpenStream(srv.Domain())
	if err != nil {
		t.Fatal(err)
	}
	if f.Child("register", NSFeature) != nil {
		t.Errorf("registration offered before TLS: %s", f)
	}
	if err := r.StartTLS(); err != nil {
		t.Fatal(err)
	}
	if f, err = r.OpenStream(srv.Domain()); err != nil {
		t.Fatal(err)
	}
	return r, f
}

// rawIQ sends an IQ on a raw stream and returns the answer with its id.
func rawIQ(t *testing.T, r *story.Raw, iq *xmlstream.Element) *xmlstream.Element {
	t.Helper()
	if err := r.SendElement(iq); err != nil {
		t.Fatal(err)
	}
	for {
		el, err := r.Next()
		if err != nil {
			t.Fatalf("waiting for the answer to %s: %v", iq, err)
		}
		if el.Name == "iq" && el.Attr("id") == iq.Attr("id") {
			return el
		}
	}
}

func legacy(fields ...string) *xmlstream.Element {
	q := xmlstream.NewElement("query", NS)
	for i := 0; i+1 < len(fields); i += 2 {
		el := xmlstream.NewElement(fields[i], NS)
		if fields[i+1] != "" {
			el.AddText(fields[i+1])
		}
		q.AddChild(el)
	}
	return q
}

func form(formType string, fields ...string) *xmlstream.Element {
	x := xmlstream.NewElement("x", stanza.NSDataForms).SetAttr("type", "submit")
	add := func(name, value string) {
		x.AddChild(xmlstream.NewElement("field", stanza.NSDataForms).SetAttr("var", name).
			AddChild(xmlstream.NewElement("value", stanza.NSDataForms).AddText(value)))
	}
	if formType != "" {
		add("FORM_TYPE", formType)
	}
	for i := 0; i+1 < len(fields); i += 2 {
		add(fields[i], fields[i+1])
	}
	return xmlstream.NewElement("query", NS).AddChild(x)
}

func newName() string { return "reg" + story.NewID() }

func account(srv *servertest.Server, local, password string) story.Account {
	return story.Account{Localpart: local, Password: password, JID: jid.MustParse(local + "@" + srv.Domain())}
}

func canLogIn(t *testing.T, srv *servertest.Server, acct story.Account) bool {
	t.Helper()
	c, err := story.Connect(context.Background(), nil, srv, acct, story.Options{NoPresence: true})
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// TestStoryRegisterFeature: the stream feature is offered before
// authentication, over TLS only (XEP-0077 §8, §11), and only with the
// module enabled; a disabled module leaves pre-authentication IQs
// refused like any other stanza (RFC 6120 §4.9.3.12).
func TestStoryRegisterFeature(t *testing.T) {
	t.Parallel()
	srv := start(t, "")
	r, f := preAuth(t, srv)
	if f.Child("register", NSFeature) == nil {
		t.Fatalf("no registration feature: %s", f)
	}
	// Not after authentication.
	acct := story.NewAccount(t, srv, "alice")
	if _, err := r.Auth(acct.Localpart, acct.Password); err != nil {
		t.Fatal(err)
	}
	if f, err := r.OpenStream(srv.Domain()); err != nil || f.Child("register", NSFeature) != nil {
		t.Errorf("features after authentication: %s %v", f, err)
	}

	// Before TLS an IQ is not taken, even with the module enabled.
	clear, err := story.DialRaw(context.Background(), srv, story.TCP)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := clear.OpenStream(srv.Domain()); err != nil {
		t.Fatal(err)
	}
	if err := clear.SendElement(story.IQSet(nil, legacy("username", newName(), "password", "long enough password"))); err != nil {
		t.Fatal(err)
	}
	if err := clear.ExpectStreamError("not-authorized"); err != nil {
		t.Error(err)
	}

	off := servertest.Start(t)
	r, f = preAuth(t, off)
	if f.Child("register", NSFeature) != nil {
		t.Errorf("registration offered by a disabled module: %s", f)
	}
	if err := r.SendElement(story.IQGet(nil, legacy())); err != nil {
		t.Fatal(err)
	}
	if err := r.ExpectStreamError("not-authorized"); err != nil {
		t.Error(err)
	}
	if off.Hooks().Owners()["register"] {
		t.Error("disabled module has hooks")
	}
}

// TestStoryRegisterForm: the fields needed, as legacy fields and as a
// data form (§3.1, §4, §6).
func TestStoryRegisterForm(t *testing.T) {
	t.Parallel()
	srv := start(t, "instructions = \"Pick a name.\"")
	r, _ := preAuth(t, srv)
	res := rawIQ(t, r, story.IQGet(nil, legacy()))
	story.AssertStanza(t, res, story.IsIQ("result"))
	q := res.Child("query", NS)
	if q == nil || q.Child("username", NS) == nil || q.Child("password", NS) == nil || q.ChildText("instructions", NS) != "Pick a name." {
		t.Fatalf("fields: %s", res)
	}
	if q.Child("registered", NS) != nil {
		t.Errorf("an unauthenticated entity is not registered: %s", q)
	}
	x := q.Child("x", stanza.NSDataForms)
	if x == nil || x.Attr("type") != "form" {
		t.Fatalf("no data form: %s", q)
	}
	fields := map[string]*xmlstream.Element{}
	for f := range x.ChildrenNamed("field", stanza.NSDataForms) {
		fields[f.Attr("var")] = f
	}
	if ft := fields["FORM_TYPE"]; ft == nil || ft.Attr("type") != "hidden" || ft.ChildText("value", stanza.NSDataForms) != NS {
		t.Errorf("FORM_TYPE: %s", x)
	}
	for name, typ := range map[string]string{"username": "text-single", "password": "text-private"} {
		if f := fields[name]; f == nil || f.Attr("type") != typ || f.Child("required", stanza.NSDataForms) == nil {
			t.Errorf("field %s: %s", name, x)
		}
	}
	// Addressed to the domain, the same.
	story.AssertStanza(t, rawIQ(t, r, story.IQGet(story.RawAddr(srv.Domain()), legacy())), story.IsIQ("result"))
}

// TestStoryRegisterThenLogIn: an account registered with legacy fields or
// with the data form can authenticate, on the same stream or a new one
// (§3.1, §3.1.1).
func TestStoryRegisterThenLogIn(t *testing.T) {
	t.Parallel()
	srv := start(t, "")
	name, password := newName(), "correct horse battery"
	r, _ := preAuth(t, srv)
	story.AssertStanza(t, rawIQ(t, r, story.IQSet(nil, legacy("username", name, "password", password))), story.IsIQ("result"))
	if _, err := r.Auth(name, password); err != nil {
		t.Fatalf("log in on the registration stream: %v", err)
	}
	if _, err := r.OpenStream(srv.Domain()); err != nil {
		t.Fatal(err)
	}
	if j, err := r.Bind("here"); err != nil || j.Local() != strings.ToLower(name) {
		t.Fatalf("bind %v %v", j, err)
	}
	c := story.MustConnect(t, srv, account(srv, name, password), story.Options{})
	story.AssertStanza(t, c.IQ(story.Ping(nil)), story.IsIQ("result"))

	name2 := newName()
	r2, _ := preAuth(t, srv)
	story.AssertStanza(t, rawIQ(t, r2, story.IQSet(nil, form(NS, "username", name2, "password", password))), story.IsIQ("result"))
	if !canLogIn(t, srv, account(srv, name2, password)) {
		t.Error("cannot log in with an account registered with the data form")
	}
	if canLogIn(t, srv, account(srv, name2, "wrong password")) {
		t.Error("logged in with a wrong password")
	}
}

// TestStoryRegisterErrors: conflict for a taken username, not-acceptable
// for missing or empty fields (§3.1) and a short password, jid-malformed
// for a username that is no local part, unexpected-request for a removal
// before authentication (§3.2), bad-request for a wrong form.
func TestStoryRegisterErrors(t *testing.T) {
	t.Parallel()
	srv := start(t, "min_password_length = 10")
	taken := story.NewAccount(t, srv, "taken")
	r, _ := preAuth(t, srv)
	pw := "long enough password"
	for _, tc := range []struct {
		name  string
		query *xmlstream.Element
		typ   string
		cond  string
	}{
		{"taken", legacy("username", taken.Localpart, "password", pw), "cancel", "conflict"},
		{"taken, other case", legacy("username", strings.ToUpper(taken.Localpart), "password", pw), "cancel", "conflict"},
		{"taken, form", form(NS, "username", taken.Localpart, "password", pw), "cancel", "conflict"},
		{"no password", legacy("username", newName()), "modify", "not-acceptable"},
		{"empty password", legacy("username", newName(), "password", ""), "modify", "not-acceptable"},
		{"no username", legacy("password", pw), "modify", "not-acceptable"},
		{"nothing", legacy(), "modify", "not-acceptable"},
		{"form without password", form(NS, "username", newName()), "modify", "not-acceptable"},
		{"short password", legacy("username", newName(), "password", "123456789"), "modify", "not-acceptable"},
		{"bad username", legacy("username", "a@b", "password", pw), "modify", "jid-malformed"},
		{"bad username", legacy("username", "with space", "password", pw), "modify", "jid-malformed"},
		{"wrong form", form("urn:example:other", "username", newName(), "password", pw), "modify", "bad-request"},
		{"remove", legacy("remove", ""), "", "unexpected-request"},
	} {
		res := rawIQ(t, r, story.IQSet(nil, tc.query))
		if err := story.Check(res, story.IsStanzaError(tc.typ, tc.cond)); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// The stream is still usable: the errors were stanza errors.
	name := newName()
	story.AssertStanza(t, rawIQ(t, r, story.IQSet(nil, legacy("username", name, "password", pw))), story.IsIQ("result"))
	if !canLogIn(t, srv, account(srv, name, pw)) {
		t.Error("cannot log in after errors")
	}
	if !canLogIn(t, srv, taken) {
		t.Error("the taken account was changed")
	}
}

// TestStoryRegisterRateLimit: registrations_per_minute bounds account
// creation across all clients; the error says to wait (§3.1.1).
func TestStoryRegisterRateLimit(t *testing.T) {
	t.Parallel()
	srv := start(t, "registrations_per_minute = 2")
	pw := "long enough password"
	for i := range 2 {
		r, _ := preAuth(t, srv)
		if err := story.Check(rawIQ(t, r, story.IQSet(nil, legacy("username", newName(), "password", pw))), story.IsIQ("result")); err != nil {
			t.Fatalf("registration %d: %v", i+1, err)
		}
	}
	r, _ := preAuth(t, srv)
	name := newName()
	res := rawIQ(t, r, story.IQSet(nil, legacy("username", name, "password", pw)))
	story.AssertStanza(t, res, story.IsStanzaError("wait", "not-acceptable"))
	if canLogIn(t, srv, account(srv, name, pw)) {
		t.Error("refused registration created the account")
	}
	// Errors found before do not take a token: a conflict is a conflict.
	taken := story.NewAccount(t, srv, "taken")
	story.AssertStanza(t, rawIQ(t, r, story.IQSet(nil, legacy("username", taken.Localpart, "password", pw))), story.IsStanzaError("cancel", "conflict"))
}

// TestStoryChangePassword: a registered user changes the password (§3.3)
// and logs in with the new one only; the errors of §3.3.
func TestStoryChangePassword(t *testing.T) {
	t.Parallel()
	srv := start(t, "")
	domain := story.RawAddr(srv.Domain())
	story.Run(t, srv, story.Users{"alice": 1, "bob": 1}, func(alice, bob *story.Client) {
		acct := alice.Account()
		// A registered user's get (§3.1).
		res := alice.IQ(story.IQGet(nil, legacy()))
		story.AssertStanza(t, res, story.IsIQ("result"))
		if q := res.Child("query", NS); q.Child("registered", NS) == nil || q.ChildText("username", NS) != acct.Localpart {
			t.Errorf("registered user's fields: %s", res)
		}

		for _, tc := range []struct {
			name  string
			query *xmlstream.Element
			typ   string
			cond  string
		}{
			{"empty password", legacy("username", acct.Localpart, "password", ""), "modify", "bad-request"},
			{"no username", legacy("password", "a new password"), "modify", "bad-request"},
			{"another account", legacy("username", bob.Account().Localpart, "password", "a new password"), "auth", "forbidden"},
			{"short", legacy("username", acct.Localpart, "password", "short"), "modify", "not-acceptable"},
			{"wrong form", form("urn:example:other", "username", acct.Localpart, "password", "a new password"), "modify", "bad-request"},
		} {
			if err := story.Check(alice.IQ(story.IQSet(domain, tc.query)), story.IsStanzaError(tc.typ, tc.cond)); err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
		}
		if !canLogIn(t, srv, acct) {
			t.Fatal("the password changed after errors")
		}

		story.AssertStanza(t, alice.IQ(story.IQSet(domain, legacy("username", acct.Localpart, "password", "a new password"))), story.IsIQ("result"))
		changed := acct
		changed.Password = "a new password"
		if !canLogIn(t, srv, changed) {
			t.Error("cannot log in with the new password")
		}
		if canLogIn(t, srv, acct) {
			t.Error("logged in with the old password")
		}
		// The data form of §3.3, without 'to', with the bare JID as username.
		story.AssertStanza(t, alice.IQ(story.IQSet(nil, form("jabber:iq:register:changepassword",
			"username", acct.JID.String(), "old_password", "a new password", "password", "a third password"))), story.IsIQ("result"))
		changed.Password = "a third password"
		if !canLogIn(t, srv, changed) {
			t.Error("cannot log in with the password set by the form")
		}
	})
}

// TestStoryCancelRegistration: <remove/> is answered, then every session
// of the account ends with <not-authorized/> and the account is gone
// (§3.2).
func TestStoryCancelRegistration(t *testing.T) {
	t.Parallel()
	srv := start(t, "")
	story.Run(t, srv, story.Users{"alice": 2, "bob": 1}, func(alice1, alice2, bob *story.Client) {
		acct := alice1.Account()
		story.AssertStanza(t, alice1.IQ(story.IQSet(nil, legacy("remove", "", "username", acct.Localpart))), story.IsStanzaError("modify", "bad-request"))
		story.AssertStanza(t, alice1.IQ(story.IQSet(nil, legacy("remove", ""))), story.IsIQ("result"))
		alice1.Expect(story.IsStreamError("not-authorized"))
		alice2.Expect(story.IsStreamError("not-authorized"))
		if ok, err := srv.Store().AccountExists(context.Background(), acct.JID); err != nil || ok {
			t.Errorf("account still exists: %v %v", ok, err)
		}
		if canLogIn(t, srv, acct) {
			t.Error("logged in to a removed account")
		}
		// Others are unaffected; the removed account is not served.
		story.AssertStanza(t, bob.IQ(story.Ping(nil)), story.IsIQ("result"))
		story.AssertStanza(t, bob.IQ(story.Ping(alice1.Bare())), story.IsStanzaError("cancel", "service-unavailable"))

		// The cancellation form of §3.2, addressed to the server.
		story.AssertStanza(t, bob.IQ(story.IQSet(story.RawAddr(srv.Domain()), form("jabber:iq:register:cancel", "username", bob.Account().Localpart))), story.IsIQ("result"))
		bob.Expect(story.IsStreamError("not-authorized"))
		if ok, _ := srv.Store().AccountExists(context.Background(), bob.Bare()); ok {
			t.Error("bob's account still exists")
		}
	})
}

// TestStoryChangesDisabled: allow_password_change and allow_cancel off
// give not-allowed (§3.2, §3.3).
func TestStoryChangesDisabled(t *testing.T) {
	t.Parallel()
	srv := start(t, "allow_password_change = false\nallow_cancel = false")
	story.Run(t, srv, story.Users{"alice": 1}, func(alice *story.Client) {
		acct := alice.Account()
		story.AssertStanza(t, alice.IQ(story.IQSet(nil, legacy("username", acct.Localpart, "password", "a new password"))), story.IsStanzaError("cancel", "not-allowed"))
		story.AssertStanza(t, alice.IQ(story.IQSet(nil, legacy("remove", ""))), story.IsStanzaError("cancel", "not-allowed"))
		alice.ExpectNothing(100*time.Millisecond, story.IsStreamError(""))
		if !canLogIn(t, srv, acct) {
			t.Error("account changed")
		}
	})
}
