// Package register implements in-band registration (XEP-0077) for the
// server's own accounts: creating an account before authentication,
// changing its password and cancelling it afterwards.
//
// The module is disabled by default: enabling it opens account creation
// to anybody who can reach the server. Registration happens on streams
// that are not authenticated yet, which c2s only lets through once TLS is
// in place when c2s.require_tls is set (the default).
package register

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Namespaces of XEP-0077.
const (
	NS        = "jabber:iq:register"
	NSFeature = "http://jabber.org/features/iq-register" // §8
)

// FORM_TYPEs of the data forms (§13.4, XEP-0068).
const (
	formRegister       = "jabber:iq:register"
	formCancel         = "jabber:iq:register:cancel"
	formChangePassword = "jabber:iq:register:changepassword"
)

// Config configures the module.
type Config struct {
	RegistrationsPerMinute int    `toml:"registrations_per_minute" comment:"Accounts that may be created per minute, by all clients together: a token bucket of this size, refilled continuously (0: no limit)."`
	MinPasswordLength      int    `toml:"min_password_length" comment:"Shortest password accepted, in characters, for new accounts and password changes."`
	AllowPasswordChange    bool   `toml:"allow_password_change" comment:"Let users change their password in-band (XEP-0077 §3.3)."`
	AllowCancel            bool   `toml:"allow_cancel" comment:"Let users delete their account in-band (XEP-0077 §3.2)."`
	Instructions           string `toml:"instructions" comment:"Instructions sent with the registration fields and form."`
}

// Validate implements module.Validator.
func (c *Config) Validate() []error {
	var errs []error
	if c.RegistrationsPerMinute < 0 {
		errs = append(errs, errors.New("registrations_per_minute: must not be negative"))
	}
	if c.MinPasswordLength < 1 {
		errs = append(errs, errors.New("min_password_length: must be at least 1"))
	}
	return errs
}

func init() {
	module.Register(module.Factory{
		Name:             "register",
		Doc:              "In-band registration (XEP-0077): account creation, password change, cancellation.",
		EnabledByDefault: false,
		Config: func() any {
			return &Config{
				RegistrationsPerMinute: 6,
				MinPasswordLength:      8,
				AllowPasswordChange:    true,
				AllowCancel:            true,
				Instructions:           "Choose a username and a password for your account.",
			}
		},
		New: func(cfg any) (module.Module, error) { return &Register{cfg: *cfg.(*Config)}, nil },
	})
}

// Accounts is the storage the module reads: whether an account exists
// (every backend implements it).
type Accounts interface {
	AccountExists(ctx context.Context, user jid.JID) (bool, error)
}

// Register is the module.
type Register struct {
	cfg      Config
	host     module.Host
	log      *slog.Logger
	store    Accounts
	accounts module.Accounts
	bucket   *bucket // nil: no limit
}

var _ module.Module = (*Register)(nil)

// Start implements module.Module.
func (r *Register) Start(_ context.Context, env *module.Env) error {
	st, ok := env.Store.(Accounts)
	if !ok {
		return fmt.Errorf("register: the storage backend %T has no accounts", env.Store)
	}
	if env.Accounts == nil {
		return errors.New("register: the server gives no account management")
	}
	r.host, r.log, r.store, r.accounts = env.Host, env.Logger, st, env.Accounts
	if n := r.cfg.RegistrationsPerMinute; n > 0 {
		r.bucket = newBucket(n, time.Minute, time.Now)
	}
	env.Hooks.PreAuthFeatures.Add(env.Owner, 0, func() *xmlstream.Element {
		return xmlstream.NewElement("register", NSFeature)
	})
	env.Hooks.ServerFeatures.Add(env.Owner, 0, NS) // §10
	return errors.Join(
		env.Hooks.HandleIQ(env.Owner, stanza.IQGet, module.TargetStream, NS, r.form),
		env.Hooks.HandleIQ(env.Owner, stanza.IQSet, module.TargetStream, NS, r.register),
		// An authenticated user addresses the server (§3.3 example) or
		// nobody (§3.2, "home server").
		env.Hooks.HandleIQ(env.Owner, stanza.IQGet, module.TargetHost, NS, r.registered),
		env.Hooks.HandleIQ(env.Owner, stanza.IQGet, module.TargetSelf, NS, r.registered),
		env.Hooks.HandleIQ(env.Owner, stanza.IQSet, module.TargetHost, NS, r.change),
		env.Hooks.HandleIQ(env.Owner, stanza.IQSet, module.TargetSelf, NS, r.change),
	)
}

// Stop implements module.Module.
func (r *Register) Stop() error { return nil }

func query(iq *module.IQ) (*xmlstream.Element, error) {
	q := iq.Payload()
	if q.Name != "query" {
		return nil, stanza.NewError(stanza.BadRequest, "the payload of jabber:iq:register is <query/>")
	}
	return q, nil
}

// form answers the registration fields (§3.1): the legacy fields for old
// clients and the same as a data form (§4; "x:data form + iq:register
// fields" in §6).
func (r *Register) form(_ context.Context, iq *module.IQ) (*xmlstream.Element, error) {
	if _, err := query(iq); err != nil {
		return nil, err
	}
	q := xmlstream.NewElement("query", NS)
	if r.cfg.Instructions != "" {
		q.AddChild(xmlstream.NewElement("instructions", NS).AddText(r.cfg.Instructions))
	}
	q.AddChild(xmlstream.NewElement("username", NS), xmlstream.NewElement("password", NS))
	x := xmlstream.NewElement("x", stanza.NSDataForms).SetAttr("type", "form")
	x.AddChild(xmlstream.NewElement("title", stanza.NSDataForms).AddText("Account registration"))
	if r.cfg.Instructions != "" {
		x.AddChild(xmlstream.NewElement("instructions", stanza.NSDataForms).AddText(r.cfg.Instructions))
	}
	x.AddChild(
		field("hidden", "FORM_TYPE", "", formRegister, false),
		field("text-single", "username", "Username", "", true),
		field("text-private", "password", "Password", "", true),
	)
	return q.AddChild(x), nil
}

func field(typ, name, label, value string, required bool) *xmlstream.Element {
	f := xmlstream.NewElement("field", stanza.NSDataForms).SetAttr("type", typ).SetAttr("var", name)
	if label != "" {
		f.SetAttr("label", label)
	}
	if value != "" {
		f.AddChild(xmlstream.NewElement("value", stanza.NSDataForms).AddText(value))
	}
	if required {
		f.AddChild(xmlstream.NewElement("required", stanza.NSDataForms))
	}
	return f
}

// submission is what a client sent: the fields of a data form, or else
// the legacy fields.
type submission struct {
	formType string // "" for legacy fields or a form without FORM_TYPE
	fields   map[string]string
}

// submitted reads a request's fields. A data form takes precedence over
// legacy fields (§4 rule 5); it must be of type submit (XEP-0004 §3.3).
func submitted(q *xmlstream.Element) (submission, error) {
	s := submission{fields: map[string]string{}}
	if x := q.Child("x", stanza.NSDataForms); x != nil {
		if x.Attr("type") != "submit" {
			return s, stanza.NewError(stanza.BadRequest, "a data form must be submitted with type 'submit'")
		}
		for f := range x.ChildrenNamed("field", stanza.NSDataForms) {
			v := f.ChildText("value", stanza.NSDataForms)
			if f.Attr("var") == "FORM_TYPE" {
				s.formType = v
				continue
			}
			s.fields[f.Attr("var")] = v
		}
		return s, nil
	}
	for el := range q.Elements() {
		if el.NS == NS {
			s.fields[el.Name] = el.Text()
		}
	}
	return s, nil
}

// register creates an account on a stream that is not authenticated
// (§3.1, §3.1.1).
func (r *Register) register(ctx context.Context, iq *module.IQ) (*xmlstream.Element, error) {
	q, err := query(iq)
	if err != nil {
		return nil, err
	}
	if q.Child("remove", NS) != nil {
		// §3.2: cancelling needs a registered, authenticated entity.
		return nil, stanza.NewError(stanza.UnexpectedRequest, "authenticate to cancel a registration")
	}
	sub, err := submitted(q)
	if err != nil {
		return nil, err
	}
	if sub.formType != "" && sub.formType != formRegister {
		return nil, stanza.NewError(stanza.BadRequest, "unexpected FORM_TYPE "+sub.formType)
	}
	username, password := sub.fields["username"], sub.fields["password"]
	if username == "" || password == "" {
		// §3.1: every field asked for, an empty password being none.
		return nil, stanza.NewError(stanza.NotAcceptable, "a username and a password are required")
	}
	user, err := jid.New(username, iq.To.Domain(), "")
	if err != nil {
		return nil, stanza.NewError(stanza.JIDMalformed, "the username cannot be the local part of an address")
	}
	if err := r.checkPassword(password); err != nil {
		return nil, err
	}
	if exists, err := r.store.AccountExists(ctx, user); err != nil {
		return nil, err
	} else if exists {
		return nil, stanza.NewError(stanza.Conflict, "the username is taken") // §3.1
	}
	if r.bucket != nil && !r.bucket.take() {
		// §3.1.1: not-acceptable for too many registrations; "wait"
		// tells the client that trying later may work.
		return nil, &stanza.Error{Type: stanza.ErrorWait, Condition: stanza.NotAcceptable, Text: "too many registrations, try again later"}
	}
	if err := r.accounts.Create(ctx, user, password); err != nil {
		// Another registration may have taken the name since the check.
		if errors.Is(err, storage.ErrExists) {
			return nil, stanza.NewError(stanza.Conflict, "the username is taken")
		}
		if exists, xerr := r.store.AccountExists(ctx, user); xerr == nil && exists {
			return nil, stanza.NewError(stanza.Conflict, "the username is taken")
		}
		return nil, fmt.Errorf("register: create %s: %w", user, err)
	}
	r.log.Info("account registered in-band", "user", user.String())
	return nil, nil
}

func (r *Register) checkPassword(password string) error {
	if utf8.RuneCountInString(password) < r.cfg.MinPasswordLength {
		return stanza.NewError(stanza.NotAcceptable,
			"the password must have at least "+strconv.Itoa(r.cfg.MinPasswordLength)+" characters")
	}
	return nil
}

// user returns the account of an authenticated sender.
func user(iq *module.IQ) (jid.JID, error) {
	if iq.From.Local() == "" {
		return jid.JID{}, stanza.NewError(stanza.Forbidden, "")
	}
	return iq.From.Bare(), nil
}

// registered answers a registered user's get (§3.1): <registered/>, the
// username on file and an empty password.
func (r *Register) registered(_ context.Context, iq *module.IQ) (*xmlstream.Element, error) {
	if _, err := query(iq); err != nil {
		return nil, err
	}
	u, err := user(iq)
	if err != nil {
		return nil, err
	}
	return xmlstream.NewElement("query", NS).AddChild(
		xmlstream.NewElement("registered", NS),
		xmlstream.NewElement("username", NS).AddText(u.Local()),
		xmlstream.NewElement("password", NS),
	), nil
}

// change handles a registered user's set: cancellation (§3.2) or a
// password change (§3.3), with legacy fields or the data forms of §13.4.
func (r *Register) change(ctx context.Context, iq *module.IQ) (*xmlstream.Element, error) {
	q, err := query(iq)
	if err != nil {
		return nil, err
	}
	u, err := user(iq)
	if err != nil {
		return nil, err
	}
	if q.Child("remove", NS) != nil {
		for el := range q.Elements() {
			if el.Name != "remove" || el.NS != NS {
				// §3.2: <remove/> must be the only child.
				return nil, stanza.NewError(stanza.BadRequest, "<remove/> must be alone")
			}
		}
		return r.cancel(ctx, iq, u)
	}
	sub, err := submitted(q)
	if err != nil {
		return nil, err
	}
	switch sub.formType {
	case formCancel:
		if name := sub.fields["username"]; name != "" && !sameUser(name, u) {
			return nil, stanza.NewError(stanza.Forbidden, "that is not your account")
		}
		return r.cancel(ctx, iq, u)
	case "", formChangePassword:
	default:
		return nil, stanza.NewError(stanza.BadRequest, "unexpected FORM_TYPE "+sub.formType)
	}
	if !r.cfg.AllowPasswordChange {
		return nil, stanza.NewError(stanza.NotAllowed, "password changes are disabled") // §3.3
	}
	username, password := sub.fields["username"], sub.fields["password"]
	if username == "" || password == "" {
		// §3.3: incomplete; an empty password leaves the old one.
		return nil, stanza.NewError(stanza.BadRequest, "a username and a new password are required")
	}
	if !sameUser(username, u) {
		return nil, stanza.NewError(stanza.Forbidden, "that is not your account")
	}
	if err := r.checkPassword(password); err != nil {
		return nil, err
	}
	if err := r.accounts.SetPassword(ctx, u, password); err != nil {
		return nil, fmt.Errorf("register: set password of %s: %w", u, err)
	}
	r.log.Info("password changed in-band", "user", u.String())
	return nil, nil
}

// sameUser tells whether a username field names the account: its local
// part, or its bare JID as in the form examples of §3.2 and §3.3.
func sameUser(name string, u jid.JID) bool {
	if j, err := jid.New(name, u.Domain(), ""); err == nil && j == u {
		return true
	}
	j, err := jid.Parse(name)
	return err == nil && j == u
}

// cancel removes the account (§3.2): the result first, then the removal,
// which closes every session of the account with <not-authorized/>.
func (r *Register) cancel(ctx context.Context, iq *module.IQ, u jid.JID) (*xmlstream.Element, error) {
	if !r.cfg.AllowCancel {
		return nil, stanza.NewError(stanza.NotAllowed, "cancelling accounts in-band is disabled")
	}
	r.host.Send(ctx, stanza.NewIQ(stanza.IQResult, iq.ID, iq.From, iq.To, nil))
	if err := r.accounts.Remove(ctx, u); err != nil {
		r.log.Error("removing an account in-band after answering", "user", u.String(), "error", err)
	} else {
		r.log.Info("account cancelled in-band", "user", u.String())
	}
	return nil, module.ErrReplied
}

// bucket is a token bucket: up to size tokens, refilled at size per
// period.
type bucket struct {
	mu     sync.Mutex
	size   float64
	rate   float64 // tokens per second
	tokens float64
	last   time.Time
	now    func() time.Time
}

func newBucket(size int, period time.Duration, now func() time.Time) *bucket {
	return &bucket{size: float64(size), rate: float64(size) / period.Seconds(), tokens: float64(size), last: now(), now: now}
}

// take takes a token if there is one.
func (b *bucket) take() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.tokens = min(b.size, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
