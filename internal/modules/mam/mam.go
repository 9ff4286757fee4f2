// Package mam archives one-to-one messages and answers archive queries:
// Message Archive Management (XEP-0313, urn:xmpp:mam:2 and, as MongooseIM
// and ejabberd do, urn:xmpp:mam:1), with XEP-0359 stanza IDs on the
// messages it archives, XEP-0059 paging and XEP-0441 preferences.
//
// A message is archived once per account (in the sender's archive as
// outgoing, in the recipient's as incoming), however many resources get
// a copy. Writes go through a background writer with group commits
// (internal/batch). An acknowledged message is never lost: a message is
// queued before it is delivered, and the server sends a stream-management
// <a/> only after the queue up to that point is stored (the BeforeAck
// hook); a full queue makes senders wait; shutdown stores the rest.
package mam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/batch"
	"github.com/meerkat-xmpp/meerkat/internal/config"
	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Namespaces.
const (
	NS         = "urn:xmpp:mam:2"          // XEP-0313
	NSExtended = "urn:xmpp:mam:2#extended" // XEP-0313 §7: before-id, after-id, ids, flip-page, metadata
	NSv1       = "urn:xmpp:mam:1"          // the previous version, still asked for by clients
	NSStanzaID = stanza.NSStanzaID         // XEP-0359
)

// Default archiving modes (XEP-0441).
const (
	Always = "always"
	Never  = "never"
	Roster = "roster"
)

// Config configures the module.
type Config struct {
	Default         string          `toml:"default" comment:"What is archived for users without preferences: always, never, or roster (only messages with contacts in the roster)."`
	DefaultPageSize int             `toml:"default_page_size" comment:"Results per page when a query does not say."`
	MaxPageSize     int             `toml:"max_page_size" comment:"Most results per page, whatever a query asks."`
	MaxBatch        int             `toml:"max_batch" comment:"Most messages written in one transaction."`
	MaxQueue        int             `toml:"max_queue" comment:"Messages waiting to be written; when full, senders wait for the disk."`
	Node            int             `toml:"node" comment:"This node's number (0-255), part of every archive ID: each node of a cluster needs its own."`
	Linger          config.Duration `toml:"linger" comment:"How long archived messages gather before they are written, unless a client waits for them (an acknowledgement, a query): longer batches, less disk work."`
}

// Validate implements module.Validator.
func (c *Config) Validate() []error {
	var errs []error
	if c.Default != Always && c.Default != Never && c.Default != Roster {
		errs = append(errs, fmt.Errorf("default: %q is none of always, never, roster", c.Default))
	}
	if c.DefaultPageSize < 1 || c.MaxPageSize < c.DefaultPageSize {
		errs = append(errs, errors.New("default_page_size must be at least 1 and max_page_size at least default_page_size"))
	}
	if c.MaxBatch < 1 || c.MaxQueue < c.MaxBatch {
		errs = append(errs, errors.New("max_batch must be at least 1 and max_queue at least max_batch"))
	}
	if c.Linger.Duration < 0 || c.Linger.Duration > time.Second {
		errs = append(errs, errors.New("linger: must be between 0 and 1s"))
	}
	if c.Node < 0 || c.Node > 255 {
		errs = append(errs, errors.New("node: must be between 0 and 255"))
	}
	return errs
}

func init() {
	module.Register(module.Factory{
		Name:             "mam",
		Doc:              "Message archive (XEP-0313) with stanza IDs (XEP-0359) and preferences (XEP-0441).",
		EnabledByDefault: true,
		Config: func() any {
			return &Config{Default: Always, DefaultPageSize: 50, MaxPageSize: 250, MaxBatch: 500, MaxQueue: 20000, Linger: config.Duration{Duration: 5 * time.Millisecond}}
		},
		New: func(cfg any) (module.Module, error) { return &MAM{cfg: *cfg.(*Config)}, nil },
	})
}

// Store is the storage the module uses.
type Store interface {
	storage.ArchiveStore
	storage.SecretStore
	RosterItem(ctx context.Context, user, contact jid.JID) (storage.RosterItem, error)
}

// MAM is the module.
type MAM struct {
	cfg    Config
	store  Store
	host   module.Host
	log    *slog.Logger
	ids    idGen
	codec  idCodec
	writer *batch.Writer[storage.ArchiveMessage]
	prefs  prefsCache
}

var _ module.Module = (*MAM)(nil)

// Hook priorities: the outgoing stamp runs before carbons (10) copies the
// message to the sender's other resources, so that their <sent/> copy
// carries the sender's stanza ID (XEP-0313 §3), and is undone after every
// other UserSend hook, before the message is routed; the incoming one
// runs after the filters (blocking), so a refused message is not archived.
const (
	stampPriority    = 20
	unstampPriority  = -1000
	incomingPriority = -50
)

// Start implements module.Module.
func (m *MAM) Start(ctx context.Context, env *module.Env) error {
	st, ok := env.Store.(Store)
	if !ok {
		return fmt.Errorf("mam: the storage backend %T does not store archives", env.Store)
	}
	key, err := st.Secret(ctx, "mam-id-key", 16)
	if err != nil {
		return fmt.Errorf("mam: %w", err)
	}
	if m.codec, err = newIDCodec(key); err != nil {
		return err
	}
	m.store, m.host, m.log = st, env.Host, env.Logger
	m.ids.node = uint64(m.cfg.Node)
	m.prefs.init()
	m.writer = batch.New(st.AppendArchive, batch.Options[storage.ArchiveMessage]{MaxBatch: m.cfg.MaxBatch, MaxQueue: m.cfg.MaxQueue, Linger: m.cfg.Linger.Duration, Log: env.Logger})

	h := env.Hooks
	for _, f := range []string{NS, NSExtended, NSv1, NSStanzaID} {
		h.AccountFeatures.Add(env.Owner, 0, f)
	}
	h.UserSend.Add(env.Owner, stampPriority, m.stampOutgoing)
	h.UserSend.Add(env.Owner, unstampPriority, m.unstampOutgoing)
	h.UserReceive.Add(env.Owner, incomingPriority, m.archiveIncoming)
	h.BeforeAck.Add(env.Owner, 0, func(ctx context.Context, _ module.Session) { m.writer.Wait(ctx) })
	// The account's data is deleted before its sessions are closed:
	// what they archived in between, queued or not, goes once they are
	// closed (UserRemoved), so nothing of it outlives the account.
	h.UserRemoved.Add(env.Owner, 0, func(ctx context.Context, user jid.JID) {
		m.prefs.forget(user)
		m.removeArchive(ctx, user)
	})
	h.RoomMessage.Add(env.Owner, 0, m.archiveRoom)
	h.RoomDestroyed.Add(env.Owner, 0, m.removeArchive)
	for _, ns := range []string{NS, NSv1} {
		for _, typ := range []string{stanza.IQGet, stanza.IQSet} {
			if err := errors.Join(
				h.HandleIQ(env.Owner, typ, module.TargetSelf, ns, m.handleIQ(ns)),
				h.HandleIQ(env.Owner, typ, module.TargetRoom, ns, m.handleRoomIQ(ns)),
				// XEP-0313 §8: another user's archive is not yours to read.
				h.HandleIQ(env.Owner, typ, module.TargetBare, ns, func(context.Context, *module.IQ) (*xmlstream.Element, error) {
					return nil, stanza.NewError(stanza.Forbidden, "")
				}),
			); err != nil {
				return fmt.Errorf("mam: %w", err)
			}
		}
	}
	return nil
}

// Stop implements module.Module: what is queued is written.
func (m *MAM) Stop() error {
	if m.writer != nil {
		m.writer.Close()
	}
	return nil
}

// stampOutgoing archives a message a user sends, in the user's archive,
// and gives the copies the user's other resources get (carbons) the
// user's stanza ID.
func (m *MAM) stampOutgoing(ctx context.Context, ev *module.StanzaEvent) module.Result {
	st := ev.Stanza
	if ev.Session == nil || st.Kind != stanza.KindMessage {
		return module.Continue
	}
	owner := ev.User
	clean := withoutStanzaID(st.El, owner.String())
	// A message to the account itself is archived once, as incoming.
	if st.To.IsZero() || st.To.Bare() == owner || !Archivable(st) || !m.shouldArchive(ctx, owner, st.To) {
		st.El = clean
		return module.Continue
	}
	id := m.ids.next(time.Now())
	m.writer.Add(storage.ArchiveMessage{ID: id, Owner: owner, With: st.To, Outgoing: true, Stanza: clean.String()})
	st.El = addStanzaID(st.El, clean, owner.String(), m.codec.encode(id))
	return module.Continue
}

// unstampOutgoing takes the sender's stanza ID off before the message
// goes to its recipient (XEP-0313 §3: not to JIDs that cannot read the
// archive).
func (m *MAM) unstampOutgoing(_ context.Context, ev *module.StanzaEvent) module.Result {
	if ev.Session != nil && ev.Stanza.Kind == stanza.KindMessage {
		ev.Stanza.El = withoutStanzaID(ev.Stanza.El, ev.User.String())
	}
	return module.Continue
}

// archiveIncoming archives a message to a user in the user's archive and
// adds the user's stanza ID to what the user's resources get.
func (m *MAM) archiveIncoming(ctx context.Context, ev *module.StanzaEvent) module.Result {
	st := ev.Stanza
	if st.Kind != stanza.KindMessage {
		return module.Continue
	}
	if _, ok := module.Rerouted(ctx); ok {
		// Archived when it was first routed, and it carries that stanza
		// ID: the same message, not a new one (XEP-0198 §4 rerouting).
		return module.Continue
	}
	owner := ev.User
	clean := withoutStanzaID(st.El, owner.String())
	if st.From.IsZero() || !Archivable(st) || !m.shouldArchive(ctx, owner, st.From) {
		st.El = clean
		return module.Continue
	}
	id := m.ids.next(time.Now())
	m.writer.Add(storage.ArchiveMessage{ID: id, Owner: owner, With: st.From, Stanza: clean.String()})
	st.El = addStanzaID(st.El, clean, owner.String(), m.codec.encode(id))
	return module.Continue
}

// archiveRoom archives a group chat message in the room's archive
// (XEP-0313 §6.1.2) and gives the members' copies the room's stanza ID
// (XEP-0359 §3: by the room). 'with' is the sender, whose bare JID is
// the resource of the message's 'from' in a MUC Light room.
func (m *MAM) archiveRoom(_ context.Context, ev *module.StanzaEvent) module.Result {
	st := ev.Stanza
	if st.Kind != stanza.KindMessage {
		return module.Continue
	}
	room := ev.User
	clean := withoutStanzaID(st.El, room.String())
	if st.Type != stanza.MessageGroupchat || !roomArchivable(st) {
		st.El = clean
		return module.Continue
	}
	sender, err := jid.Parse(st.From.Resource())
	if err != nil {
		sender = st.From
	}
	id := m.ids.next(time.Now())
	m.writer.Add(storage.ArchiveMessage{ID: id, Owner: room, With: sender.Bare(), Stanza: clean.String()})
	st.El = addStanzaID(st.El, clean, room.String(), m.codec.encode(id))
	return module.Continue
}

// removeArchive deletes an archive (an account's, a room's) once what is
// queued for it is written.
func (m *MAM) removeArchive(ctx context.Context, owner jid.JID) {
	m.writer.Wait(ctx)
	if err := m.store.RemoveArchive(ctx, owner); err != nil {
		m.log.Error("mam: removing an archive", "owner", owner.String(), "error", err)
	}
}
