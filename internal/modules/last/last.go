// Package last implements Last Activity (XEP-0012): how long ago a user
// logged out and with which status, for the contacts allowed to see the
// user's presence, and the server's uptime.
package last

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// NS is the namespace of XEP-0012.
const NS = "jabber:iq:last"

// Config configures the module.
type Config struct {
	Uptime bool `toml:"uptime" comment:"Answer queries to the server with the time since it started (XEP-0012 §5)."`
}

func init() {
	module.Register(module.Factory{
		Name:             "last",
		Doc:              "Last Activity (XEP-0012): users' last logout, the server's uptime.",
		EnabledByDefault: true,
		Config:           func() any { return &Config{Uptime: true} },
		New:              func(cfg any) (module.Module, error) { return &Last{cfg: *cfg.(*Config)}, nil },
	})
}

// Store is the storage of last logouts (storage.ProfileStore implements it).
type Store interface {
	LastActivity(ctx context.Context, user jid.JID) (storage.LastActivity, error)
	SetLastActivity(ctx context.Context, user jid.JID, last storage.LastActivity) error
}

// Roster is the part of storage.RosterStore the module reads to decide
// who may see a user's presence.
type Roster interface {
	RosterItem(ctx context.Context, user, contact jid.JID) (storage.RosterItem, error)
}

// Last is the module.
type Last struct {
	cfg     Config
	host    module.Host
	log     *slog.Logger
	store   Store
	roster  Roster // nil: nobody but the user may ask
	started time.Time
	now     func() time.Time
}

var _ module.Module = (*Last)(nil)

// statusKey stores, per session, the status of the unavailable presence
// the client sent last (nil after an available one).
type statusKey struct{}

// Start implements module.Module.
func (l *Last) Start(_ context.Context, env *module.Env) error {
	st, ok := env.Store.(Store)
	if !ok {
		return fmt.Errorf("last: the storage backend %T does not store last activity", env.Store)
	}
	l.store, l.host, l.log = st, env.Host, env.Logger
	if r, ok := env.Store.(Roster); ok {
		l.roster = r
	} else {
		l.log.Warn("the storage backend has no rosters: only users themselves may ask for their last activity")
	}
	if l.now == nil {
		l.now = time.Now
	}
	l.started = l.now()

	// §6: the feature for the server (uptime) and for accounts.
	if l.cfg.Uptime {
		env.Hooks.ServerFeatures.Add(env.Owner, 0, NS)
	}
	env.Hooks.AccountFeatures.Add(env.Owner, 0, NS)
	// trackStatus only looks and never stops anything: it runs before
	// the protocol handlers (0–99), which may consume presence.
	env.Hooks.UserSend.Add(env.Owner, 99, l.trackStatus)
	// guardFull answers instead of delivering: after the filters (100+).
	env.Hooks.UserReceive.Add(env.Owner, 50, l.guardFull)
	env.Hooks.SessionClosed.Add(env.Owner, 0, l.sessionClosed)
	var errs []error
	if l.cfg.Uptime {
		errs = append(errs, env.Hooks.HandleIQ(env.Owner, stanza.IQGet, module.TargetHost, NS, l.uptime))
	}
	// The TargetBare handler serves TargetSelf too.
	errs = append(errs, env.Hooks.HandleIQ(env.Owner, stanza.IQGet, module.TargetBare, NS, l.user))
	return errors.Join(errs...)
}

// Stop implements module.Module.
func (l *Last) Stop() error { return nil }

func query(seconds int64, status string) *xmlstream.Element {
	q := xmlstream.NewElement("query", NS).SetAttr("seconds", strconv.FormatInt(max(seconds, 0), 10))
	if status != "" {
		q.AddText(status)
	}
	return q
}

// uptime answers a query to the server (§5): seconds since it started,
// without text.
func (l *Last) uptime(context.Context, *module.IQ) (*xmlstream.Element, error) {
	return query(int64(l.now().Sub(l.started)/time.Second), ""), nil
}

// user answers a query to a user's bare JID (§3): 0 while the user has a
// session, else the seconds since the last logout and the status of the
// last unavailable presence; only for the user and for those allowed to
// see the user's presence (§3, §8).
func (l *Last) user(ctx context.Context, iq *module.IQ) (*xmlstream.Element, error) {
	user := iq.To
	if iq.Target == module.TargetSelf {
		user = iq.From.Bare()
	}
	ok, err := l.allowed(ctx, user, iq.From)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, stanza.NewError(stanza.Forbidden, "")
	}
	if len(l.host.Sessions(user)) > 0 {
		// §3: at least one connected resource.
		return query(0, ""), nil
	}
	last, err := l.store.LastActivity(ctx, user)
	if errors.Is(err, storage.ErrNotFound) {
		// The account has never logged out (or not since it was made).
		return nil, stanza.NewError(stanza.ItemNotFound, "no logout recorded")
	}
	if err != nil {
		return nil, err
	}
	return query(int64(l.now().Sub(last.At)/time.Second), last.Status), nil
}

// allowed tells whether from may learn about user's availability: the
// user's own resources may, and contacts to whom the user's presence is
// sent, that is with a subscription 'from' or 'both' in the user's roster
// (XEP-0012 §3, §8; RFC 6121 §2.1.2.5).
func (l *Last) allowed(ctx context.Context, user, from jid.JID) (bool, error) {
	if from.Bare() == user {
		return true, nil
	}
	if l.roster == nil {
		return false, nil
	}
	item, err := l.roster.RosterItem(ctx, user, from.Bare())
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("last: roster of %s: %w", user, err)
	}
	return item.Subscription == storage.SubFrom || item.Subscription == storage.SubBoth, nil
}

// guardFull keeps a query to a full JID from reaching the client when
// the sender may not see the user's presence (§4: forbidden, and the IQ
// MUST NOT be delivered). The router delivers the others.
func (l *Last) guardFull(ctx context.Context, ev *module.StanzaEvent) module.Result {
	st := ev.Stanza
	if st.Kind != stanza.KindIQ || st.Type != stanza.IQGet || st.To.IsBare() || st.From.IsZero() {
		return module.Continue
	}
	if p := st.Payload(); p == nil || p.NS != NS {
		return module.Continue
	}
	ok, err := l.allowed(ctx, ev.User, st.From)
	if ok {
		return module.Continue
	}
	e := stanza.NewError(stanza.Forbidden, "")
	if err != nil {
		l.log.Error("checking who may ask for last activity", "user", ev.User.String(), "error", err)
		e = stanza.NewError(stanza.InternalServerError, "")
	}
	l.host.Send(ctx, stanza.ErrorReply(st.El, e))
	return module.Stop
}

// trackStatus remembers the status of the unavailable presence a session
// broadcasts, to record it when the session turns out to be the user's
// last (§3: "the status message of the last unavailable presence").
func (l *Last) trackStatus(_ context.Context, ev *module.StanzaEvent) module.Result {
	st := ev.Stanza
	if st.Kind != stanza.KindPresence || !st.To.IsZero() || ev.Session == nil {
		return module.Continue
	}
	switch st.Type {
	case stanza.PresenceUnavailable:
		ev.Session.SetValue(statusKey{}, st.El.ChildText("status", stanza.NSClient))
	case stanza.PresenceAvailable:
		if ev.Session.Value(statusKey{}) != nil {
			ev.Session.SetValue(statusKey{}, nil)
		}
	}
	return module.Continue
}

// sessionClosed records the logout when the user's last session ends.
func (l *Last) sessionClosed(ctx context.Context, s module.Session) {
	user := s.JID().Bare()
	if len(l.host.Sessions(user)) > 0 {
		return
	}
	status, _ := s.Value(statusKey{}).(string)
	// The session may end because the server is stopping: record anyway.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := l.store.SetLastActivity(ctx, user, storage.LastActivity{At: l.now(), Status: status})
	if err != nil && !errors.Is(err, storage.ErrNotFound) { // ErrNotFound: the account was removed
		l.log.Error("recording last activity", "user", user.String(), "error", err)
	}
}
