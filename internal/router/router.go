// Package router delivers stanzas: the rules of RFC 6121 §8 for local
// accounts, the table of local sessions, services on subdomains, and the
// dispatch of stanzas the server handles itself to the modules' hooks.
//
// It is the seam where a cluster plugs in: everything a module or a
// session needs from routing is behind module.Host, which Router
// implements for a single node.
package router

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Accounts tells whether an account exists (RFC 6121 §8.5.1).
type Accounts interface {
	AccountExists(ctx context.Context, bare jid.JID) (bool, error)
}

// Options configure a Router.
type Options struct {
	Domains []string
	// MaxSessionsPerUser bounds the resources one account may bind.
	MaxSessionsPerUser int
	// IQTimeout bounds how long the server waits for the answer to an IQ
	// it sent (SendIQ).
	IQTimeout time.Duration
}

// Router is the single-node router.
type Router struct {
	hooks    *module.Hooks
	accounts Accounts
	log      *slog.Logger
	domains  map[string]bool
	domList  []string
	maxSess  int
	iqWait   time.Duration

	seed   maphash.Seed
	shards [64]shard

	servicesMu sync.Mutex
	services   atomic.Pointer[map[string]module.ServiceHandler]

	pendingMu sync.Mutex
	pending   map[string]*pendingIQ
	iqSeq     atomic.Uint64
}

type shard struct {
	mu    sync.RWMutex
	users map[jid.JID][]module.Session // bare JID → bound sessions
}

var _ module.Host = (*Router)(nil)

// New returns a router serving the given domains.
func New(opts Options, hooks *module.Hooks, accounts Accounts, log *slog.Logger) *Router {
	r := &Router{
		hooks:    hooks,
		accounts: accounts,
		log:      log,
		domains:  map[string]bool{},
		maxSess:  opts.MaxSessionsPerUser,
		iqWait:   opts.IQTimeout,
		seed:     maphash.MakeSeed(),
		pending:  map[string]*pendingIQ{},
	}
	if r.iqWait <= 0 {
		r.iqWait = 30 * time.Second
	}
	for _, d := range opts.Domains {
		r.domains[d] = true
		r.domList = append(r.domList, d)
	}
	for i := range r.shards {
		r.shards[i].users = map[jid.JID][]module.Session{}
	}
	return r
}

func (r *Router) shardOf(bare jid.JID) *shard {
	return &r.shards[maphash.String(r.seed, bare.String())%uint64(len(r.shards))]
}

// IsLocal reports whether domain is served here.
func (r *Router) IsLocal(domain string) bool { return r.domains[domain] }

// Domains lists the served domains.
func (r *Router) Domains() []string { return r.domList }

// ErrTooManySessions is returned by Register when an account has bound
// as many resources as it may.
var ErrTooManySessions = errors.New("router: too many sessions for this account")

// Register adds a bound session. A session already bound to the same full
// JID is removed and returned so that the caller can close it with a
// <conflict/> stream error (RFC 6120 §7.7.2.2).
func (r *Router) Register(s module.Session) (replaced module.Session, err error) {
	full := s.JID()
	bare := full.Bare()
	sh := r.shardOf(bare)
	sh.mu.Lock()
	list := sh.users[bare]
	next := make([]module.Session, 0, len(list)+1)
	for _, o := range list {
		if o.JID() == full {
			replaced = o
			continue
		}
		next = append(next, o)
	}
	if r.maxSess > 0 && len(next) >= r.maxSess {
		sh.mu.Unlock()
		return nil, ErrTooManySessions
	}
	sh.users[bare] = append(next, s)
	sh.mu.Unlock()
	return replaced, nil
}

// Unregister removes a session; it does nothing if s is not registered
// (it may have been replaced already).
func (r *Router) Unregister(s module.Session) bool {
	bare := s.JID().Bare()
	sh := r.shardOf(bare)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	list := sh.users[bare]
	for i, o := range list {
		if o == s {
			next := make([]module.Session, 0, len(list)-1)
			next = append(next, list[:i]...)
			next = append(next, list[i+1:]...)
			if len(next) == 0 {
				delete(sh.users, bare)
			} else {
				sh.users[bare] = next
			}
			return true
		}
	}
	return false
}

// Sessions returns the sessions of a local account. The slice is shared:
// do not modify it.
func (r *Router) Sessions(bare jid.JID) []module.Session {
	bare = bare.Bare()
	sh := r.shardOf(bare)
	sh.mu.RLock()
	list := sh.users[bare]
	sh.mu.RUnlock()
	return list
}

// SessionOf returns the session bound to a full JID.
func (r *Router) SessionOf(full jid.JID) module.Session {
	for _, s := range r.Sessions(full.Bare()) {
		if s.JID() == full {
			return s
		}
	}
	return nil
}

// RangeSessions calls fn for every session until it returns false.
func (r *Router) RangeSessions(fn func(module.Session) bool) {
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.RLock()
		var all []module.Session
		for _, list := range sh.users {
			all = append(all, list...)
		}
		sh.mu.RUnlock()
		for _, s := range all {
			if !fn(s) {
				return
			}
		}
	}
}

// SessionCount returns the number of bound sessions.
func (r *Router) SessionCount() int {
	n := 0
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.RLock()
		for _, list := range sh.users {
			n += len(list)
		}
		sh.mu.RUnlock()
	}
	return n
}

// RegisterService routes every stanza addressed to domain (or to a JID at
// domain) to h.
func (r *Router) RegisterService(domain string, h module.ServiceHandler) error {
	r.servicesMu.Lock()
	defer r.servicesMu.Unlock()
	if r.domains[domain] {
		return fmt.Errorf("router: %s is a served domain, not a service", domain)
	}
	next := map[string]module.ServiceHandler{}
	if p := r.services.Load(); p != nil {
		for k, v := range *p {
			next[k] = v
		}
	}
	if _, dup := next[domain]; dup {
		return fmt.Errorf("router: service %s registered twice", domain)
	}
	next[domain] = h
	r.services.Store(&next)
	return nil
}

// UnregisterService removes a service.
func (r *Router) UnregisterService(domain string) {
	r.servicesMu.Lock()
	defer r.servicesMu.Unlock()
	p := r.services.Load()
	if p == nil {
		return
	}
	next := map[string]module.ServiceHandler{}
	for k, v := range *p {
		if k != domain {
			next[k] = v
		}
	}
	r.services.Store(&next)
}

func (r *Router) service(domain string) module.ServiceHandler {
	if p := r.services.Load(); p != nil {
		return (*p)[domain]
	}
	return nil
}

// Send parses the routing attributes of el and routes it.
func (r *Router) Send(ctx context.Context, el *xmlstream.Element) {
	st, serr := stanza.Parse(el, stanza.NSClient)
	if serr != nil {
		r.log.Error("module built an invalid stanza", "error", serr, "stanza", el.String())
		return
	}
	r.Route(ctx, &st)
}

// FromClient handles a stanza sent by a local client session: its 'from'
// is already stamped (RFC 6120 §8.1.2.1). The UserSend hooks run first.
func (r *Router) FromClient(ctx context.Context, s module.Session, st *stanza.Stanza) {
	ev := module.StanzaEvent{Stanza: st, Session: s, User: st.From.Bare()}
	if module.RunStanza(ctx, &r.hooks.UserSend, &ev) == module.Stop {
		return
	}
	if st.To.IsZero() || st.Kind == stanza.KindIQ && st.To == st.From.Bare() {
		r.toSelf(ctx, s, st)
		return
	}
	r.route(ctx, st, s)
}

// Route delivers a stanza that has a 'from'.
func (r *Router) Route(ctx context.Context, st *stanza.Stanza) { r.route(ctx, st, nil) }

func (r *Router) route(ctx context.Context, st *stanza.Stanza, from module.Session) {
	to := st.To
	if to.IsZero() {
		r.log.Warn("dropping stanza without 'to' routed by the server", "stanza", st.El.String())
		return
	}
	domain := to.Domain()
	if !r.domains[domain] {
		if h := r.service(domain); h != nil {
			h(ctx, st, from)
			return
		}
		// Federation is not there yet (RFC 6120 §10.4).
		r.Bounce(ctx, st, stanza.NewError(stanza.RemoteServerNotFound, ""))
		return
	}
	if to.Local() == "" {
		r.toServer(ctx, st, from)
		return
	}
	if to.IsBare() {
		r.toBare(ctx, st, from)
		return
	}
	r.toFull(ctx, st, from)
}

// toSelf handles a client's stanza without 'to' (or an IQ to its own bare
// JID): the server handles it on behalf of the account (RFC 6120 §10.3).
func (r *Router) toSelf(ctx context.Context, s module.Session, st *stanza.Stanza) {
	switch st.Kind {
	case stanza.KindIQ:
		r.handleIQ(ctx, st, s, module.TargetSelf)
	case stanza.KindMessage:
		// RFC 6120 §10.3.1: as if addressed to the account's bare JID.
		c := *st
		c.To = st.From.Bare()
		r.toBare(ctx, &c, s)
	case stanza.KindPresence:
		// RFC 6121 §4.2.2, §4.4.2: the user's own available resources get
		// the broadcast, the sending one included. Contacts are the
		// presence module's (a UserSend hook that lets this run too).
		if st.Type == stanza.PresenceAvailable || st.Type == stanza.PresenceUnavailable {
			for _, o := range r.Sessions(st.From.Bare()) {
				// §4.5.2: unavailable presence goes to the resource that
				// sent it too, although it is not available any more.
				if o.Available() || o == s && st.Type == stanza.PresenceUnavailable {
					o.Deliver(st.El)
				}
			}
		}
	}
}

// toServer handles stanzas addressed to a served domain (RFC 6121 §8.4).
func (r *Router) toServer(ctx context.Context, st *stanza.Stanza, from module.Session) {
	if st.Kind == stanza.KindIQ {
		r.handleIQ(ctx, st, from, module.TargetHost)
		return
	}
	ev := module.StanzaEvent{Stanza: st, Session: from}
	if module.RunStanza(ctx, &r.hooks.ToServer, &ev) == module.Stop {
		return
	}
	if st.Kind == stanza.KindMessage && st.Type != stanza.MessageHeadline {
		r.Bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable, ""))
	}
}

func (r *Router) accountExists(ctx context.Context, bare jid.JID) bool {
	if len(r.Sessions(bare)) > 0 {
		return true
	}
	if r.accounts == nil {
		return false
	}
	ok, err := r.accounts.AccountExists(ctx, bare)
	if err != nil {
		r.log.Error("checking account", "jid", bare.String(), "error", err)
		return false
	}
	return ok
}

// noSuchUser applies RFC 6121 §8.5.1.
func (r *Router) noSuchUser(ctx context.Context, st *stanza.Stanza) {
	switch st.Kind {
	case stanza.KindIQ:
		if st.Type == stanza.IQGet || st.Type == stanza.IQSet {
			r.Bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable, ""))
		}
	case stanza.KindMessage:
		switch st.Type {
		case stanza.MessageNormal, stanza.MessageChat, stanza.MessageGroupchat:
			r.Bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable, ""))
		}
	}
	// Presence to a missing account is silently ignored.
}

// toBare applies RFC 6121 §8.5.2.
func (r *Router) toBare(ctx context.Context, st *stanza.Stanza, from module.Session) {
	user := st.To
	if st.Kind == stanza.KindIQ {
		if !r.accountExists(ctx, user) {
			r.noSuchUser(ctx, st)
			return
		}
		// The account's filters (blocking) apply to the IQs the server
		// answers for it too.
		ev := module.StanzaEvent{Stanza: st, User: user}
		if module.RunStanza(ctx, &r.hooks.UserReceive, &ev) == module.Stop {
			return
		}
		// §8.5.2.1.3: the server answers on behalf of the user.
		r.handleIQ(ctx, st, from, module.TargetBare)
		return
	}
	fromRoom := st.Type == stanza.MessageGroupchat && r.fromServiceRoom(st)
	if fromRoom && len(r.Sessions(user)) == 0 {
		// A room's copy for a member without a session: nobody to give
		// it to, and no offline storage for groupchat (deliverBare), so
		// it is dropped without the account lookup a storage query
		// would cost per member and message.
		return
	}
	if !r.accountExists(ctx, user) {
		r.noSuchUser(ctx, st)
		return
	}
	ev := module.StanzaEvent{Stanza: st, User: user}
	if module.RunStanza(ctx, &r.hooks.UserReceive, &ev) == module.Stop {
		return
	}
	r.deliverBare(ctx, st, user, fromRoom)
}

// deliverBare delivers a message or presence to the account's resources;
// fromRoom tells a groupchat message from a room of a registered service
// (fromServiceRoom, decided once by the caller).
func (r *Router) deliverBare(ctx context.Context, st *stanza.Stanza, user jid.JID, fromRoom bool) {
	sessions := r.Sessions(user)
	if st.Kind == stanza.KindPresence {
		switch st.Type {
		case stanza.PresenceAvailable, stanza.PresenceUnavailable,
			stanza.PresenceSubscribe, stanza.PresenceSubscribed, stanza.PresenceUnsubscribe, stanza.PresenceUnsubscribed:
			// §8.5.2.1.2: to all available resources. Subscription
			// handling proper belongs to the presence module.
			for _, s := range sessions {
				if s.Available() {
					s.Deliver(st.El)
				}
			}
		}
		return
	}
	switch st.Type {
	case stanza.MessageError:
		return // §8.5.2.1.1: silently ignored
	case stanza.MessageGroupchat:
		// §8.5.2.1.1 refuses groupchat to a bare JID, except from a room
		// of a registered service: MUC Light sends each member's copy to
		// its bare JID (muclight.md "Why it scales"), and every available
		// resource with a non-negative priority gets it, as a headline.
		// Without one the copy is dropped: room history is in the room's
		// archive.
		if !fromRoom {
			r.Bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable, ""))
			return
		}
	}
	// Resources with a negative priority never get messages to the bare
	// JID (§8.5.2.1.1). Normal and chat go to the "most available"
	// resources, those with the highest priority; headline to all.
	best := -1
	for _, s := range sessions {
		if s.Available() && s.Priority() > best {
			best = s.Priority()
		}
	}
	if best < 0 {
		if !fromRoom {
			r.offline(ctx, st, user)
		}
		return
	}
	var to []module.Session
	collect := r.hooks.MessageDelivered.Len() > 0
	taken := false
	for _, s := range sessions {
		if !s.Available() || s.Priority() < 0 {
			continue
		}
		if (st.Type == stanza.MessageHeadline || fromRoom || s.Priority() == best) && s.Deliver(st.El) {
			taken = true
			if collect {
				to = append(to, s)
			}
		}
	}
	if !taken {
		// The sessions picked were ending: as if none were there.
		if !fromRoom {
			r.offline(ctx, st, user)
		}
		return
	}
	if collect {
		r.delivered(ctx, st, user, to)
	}
}

// fromServiceRoom reports whether st comes from a room (a JID with a
// localpart) of a registered service domain, such as a MUC Light room.
func (r *Router) fromServiceRoom(st *stanza.Stanza) bool {
	return st.From.Local() != "" && !r.domains[st.From.Domain()] && r.service(st.From.Domain()) != nil
}

// delivered runs the MessageDelivered hooks.
func (r *Router) delivered(ctx context.Context, st *stanza.Stanza, user jid.JID, to []module.Session) {
	for _, h := range r.hooks.MessageDelivered.Hooks() {
		h.Fn(ctx, st, user, to)
	}
}

// offline handles a message for an account without an available resource
// (§8.5.2.2.1).
func (r *Router) offline(ctx context.Context, st *stanza.Stanza, user jid.JID) {
	if st.Type != stanza.MessageNormal && st.Type != stanza.MessageChat {
		return // headline and error are ignored
	}
	ev := module.StanzaEvent{Stanza: st, User: user}
	if module.RunStanza(ctx, &r.hooks.Offline, &ev) == module.Stop {
		return
	}
	r.Bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable, ""))
}

// toFull applies RFC 6121 §8.5.3.
func (r *Router) toFull(ctx context.Context, st *stanza.Stanza, from module.Session) {
	user := st.To.Bare()
	target := r.SessionOf(st.To)
	if target == nil && !r.accountExists(ctx, user) {
		r.noSuchUser(ctx, st)
		return
	}
	ev := module.StanzaEvent{Stanza: st, User: user}
	if module.RunStanza(ctx, &r.hooks.UserReceive, &ev) == module.Stop {
		return
	}
	if target != nil {
		// §8.5.3.1: deliver to the resource.
		if target.Deliver(st.El) {
			if st.Kind == stanza.KindMessage && r.hooks.MessageDelivered.Len() > 0 {
				r.delivered(ctx, st, user, []module.Session{target})
			}
			return
		}
		// The session was ending: as if the resource were gone (§8.5.3.2).
	}
	// §8.5.3.2: no resource matches.
	switch st.Kind {
	case stanza.KindIQ:
		if st.Type == stanza.IQGet || st.Type == stanza.IQSet {
			r.Bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable, ""))
		}
	case stanza.KindMessage:
		switch st.Type {
		case stanza.MessageChat:
			r.deliverBare(ctx, st, user, false)
		case stanza.MessageError:
		default:
			r.Bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable, ""))
		}
	case stanza.KindPresence:
		if st.Type == stanza.PresenceSubscribe {
			r.deliverBare(ctx, st, user, false)
		}
	}
}

// Bounce returns a stanza error to the sender of st, unless st is itself
// an error (RFC 6120 §8.3.1).
func (r *Router) Bounce(ctx context.Context, st *stanza.Stanza, e *stanza.Error) {
	if st.IsError() || st.Kind == stanza.KindIQ && st.Type == stanza.IQResult || st.From.IsZero() {
		return
	}
	reply := stanza.ErrorReply(st.El, e)
	rs := stanza.Stanza{El: reply, Kind: st.Kind, Type: "error", ID: st.ID, To: st.From, From: st.To}
	if rs.From.IsZero() {
		// A stanza without 'to' was addressed to the account: the error
		// comes from it (RFC 6120 §8.1.2.1 rule 3: no 'from').
		reply.RemoveAttr("from")
	}
	r.route(ctx, &rs, nil)
}

// handleIQ dispatches an IQ the server handles to the module registered
// for its payload namespace.
func (r *Router) handleIQ(ctx context.Context, st *stanza.Stanza, from module.Session, target module.Target) {
	if st.Type == stanza.IQResult || st.Type == stanza.IQError {
		if target == module.TargetHost {
			r.resolveIQ(st)
		}
		return // never answer a result or an error
	}
	payload := st.Payload()
	h := r.hooks.IQHandler(st.Type, target, payload.NS)
	if h == nil {
		// RFC 6120 §8.4: an unsupported namespace gets service-unavailable.
		r.Bounce(ctx, st, stanza.NewError(stanza.ServiceUnavailable, ""))
		return
	}
	res, err := h(ctx, &module.IQ{Stanza: st, Session: from, Target: target})
	if err != nil {
		if errors.Is(err, module.ErrReplied) {
			return
		}
		var se *stanza.Error
		if !errors.As(err, &se) {
			r.log.Error("IQ handler failed", "ns", payload.NS, "type", st.Type, "from", st.From.String(), "error", err)
			se = stanza.NewError(stanza.InternalServerError, "")
		}
		r.Bounce(ctx, st, se)
		return
	}
	result := stanza.NewIQ(stanza.IQResult, st.ID, st.From, st.To, res)
	r.route(ctx, &stanza.Stanza{El: result, Kind: stanza.KindIQ, Type: stanza.IQResult, ID: st.ID, To: st.From, From: st.To}, nil)
}

type pendingIQ struct {
	to    jid.JID
	fn    func(*stanza.Stanza)
	timer *time.Timer
}

// SendIQ sends an IQ get or set from the server (from must be set) and
// calls fn with the answer, or with nil when none came within timeout (0:
// the router's default). The id attribute is set by SendIQ.
func (r *Router) SendIQ(ctx context.Context, iq *xmlstream.Element, timeout time.Duration, fn func(*stanza.Stanza)) {
	if timeout <= 0 {
		timeout = r.iqWait
	}
	id := "mk" + strconv.FormatUint(r.iqSeq.Add(1), 36)
	iq.SetAttr("id", id)
	to, err := jid.Parse(iq.Attr("to"))
	if err != nil {
		r.log.Error("module sent an IQ without a valid 'to'", "iq", iq.String())
		return
	}
	p := &pendingIQ{to: to, fn: fn}
	r.pendingMu.Lock()
	r.pending[id] = p
	p.timer = time.AfterFunc(timeout, func() {
		r.pendingMu.Lock()
		_, ok := r.pending[id]
		delete(r.pending, id)
		r.pendingMu.Unlock()
		if ok {
			fn(nil)
		}
	})
	r.pendingMu.Unlock()
	r.Send(ctx, iq)
}

func (r *Router) resolveIQ(st *stanza.Stanza) {
	r.pendingMu.Lock()
	p, ok := r.pending[st.ID]
	// Only the entity asked may answer (its 'from' was stamped by its
	// server, so it cannot be forged by another client).
	ok = ok && p.to == st.From
	if ok {
		delete(r.pending, st.ID)
	}
	r.pendingMu.Unlock()
	if ok && p.timer.Stop() {
		p.fn(st)
	}
}
