// Package inbox implements the Inbox of MongooseIM
// (erlang-solutions.com:xmpp:inbox:0, summarized in
// ../shared/specs/inbox.md): the conversation list a chat app shows on its
// first screen, one entry per peer or room with the last message, an
// unread count, a box, and a mute deadline, kept by the server so that a
// phone gets it in one round trip.
//
// Entries are updated from the message path (update.go): a one-to-one
// message with a body updates the sender's entry (read) and the
// recipient's (one more unread); a MUC Light room message every member's;
// a chat marker (XEP-0333) the user sends resets the count. Queries,
// entry properties and the bin are IQs (iq.go). Writes are batched
// (writer.go, on internal/batch) and durable before the server acknowledges a stanza
// (XEP-0198) or answers an inbox read.
package inbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/meerkat-xmpp/meerkat/dataform"
	"github.com/meerkat-xmpp/meerkat/internal/batch"
	"github.com/meerkat-xmpp/meerkat/internal/config"
	"github.com/meerkat-xmpp/meerkat/internal/microclock"
	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
)

// Namespaces.
const (
	// NS is the Inbox feature, its queries and results.
	NS = "erlang-solutions.com:xmpp:inbox:0"
	// NSConversation is one entry's properties.
	NSConversation = NS + "#conversation"
	// NSMarkers is XEP-0333 Chat Markers.
	NSMarkers = "urn:xmpp:chat-markers:0"
	// NSOriginID is XEP-0359's origin-id (and stanza-id).
	NSOriginID = stanza.NSStanzaID
	// NSMUCLightAffiliations and NSMUCLightDestroy are the MUC Light
	// notifications that change who is in a room.
	NSMUCLightAffiliations = "urn:xmpp:muclight:0#affiliations"
	NSMUCLightDestroy      = "urn:xmpp:muclight:0#destroy"
)

// BoxAll is the query value for every box; it is not a box.
const BoxAll = "all"

// Hook priority: below the archive's (-50), which stamps the XEP-0359
// stanza-id into the message as delivered, so that the stored last
// message is the message the client got (docs/ARCHITECTURE.md, "Hook
// priorities": counting sees only what is actually delivered).
const priority = -60

// Group chat kinds (config groupchat).
const GroupchatMUCLight = "muclight"

// Config configures the module.
type Config struct {
	Boxes            []string        `toml:"boxes" comment:"Boxes besides inbox, archive and bin (reserved), e.g. [\"favourites\"]; 'all' is not a box."`
	ResetMarkers     []string        `toml:"reset_markers" comment:"Chat markers (XEP-0333) the user sends that mark a conversation read: received, displayed, acknowledged."`
	Groupchat        []string        `toml:"groupchat" comment:"Group chats whose messages update the inbox: muclight (classic MUC is not supported yet)."`
	AffChanges       bool            `toml:"aff_changes" comment:"Being added to a MUC Light room creates or updates the room's entry (one unread)."`
	RemoveOnKicked   bool            `toml:"remove_on_kicked" comment:"Being removed from a MUC Light room, or its destruction, removes the room's entry."`
	MaxResultLimit   int             `toml:"max_result_limit" comment:"Most entries one query returns, whatever the client asks (0: no limit); the fin's RSM <set> tells the client where to go on."`
	MaxResultBytes   int             `toml:"max_result_bytes" comment:"Size of the results of one query, roughly, beyond which the page ends early (0: no limit); all are queued for the client at once, so keep it well below c2s.max_outbound_bytes."`
	BinTTL           config.Duration `toml:"bin_ttl" comment:"Entries in the bin for this long are deleted (0: never)."`
	BinCleanInterval config.Duration `toml:"bin_clean_interval" comment:"How often the bins are purged of entries older than bin_ttl."`
	Linger           config.Duration `toml:"linger" comment:"With batched writes: how long writes gather before they are committed, unless a client waits for them (an acknowledgement, a read): longer batches, less disk work."`
	Writes           string          `toml:"writes" comment:"batch: the message path queues its inbox writes and one goroutine commits them together, durable before the server acknowledges the message (XEP-0198) and before any inbox read; sync: one commit per write in the message path."`
}

var reservedBoxes = []string{storage.BoxInbox, storage.BoxArchive, storage.BoxBin}

// Validate implements module.Validator.
func (c *Config) Validate() []error {
	var errs []error
	seen := map[string]bool{}
	for _, b := range c.Boxes {
		switch {
		case b == "" || b == BoxAll:
			errs = append(errs, fmt.Errorf("boxes: %q is not a box name", b))
		case slices.Contains(reservedBoxes, b):
			errs = append(errs, fmt.Errorf("boxes: %q is always there", b))
		case seen[b]:
			errs = append(errs, fmt.Errorf("boxes: %q twice", b))
		}
		seen[b] = true
	}
	for _, m := range c.ResetMarkers {
		if m != "received" && m != "displayed" && m != "acknowledged" {
			errs = append(errs, fmt.Errorf("reset_markers: %q is not a chat marker (received, displayed, acknowledged)", m))
		}
	}
	for _, g := range c.Groupchat {
		if g != GroupchatMUCLight {
			errs = append(errs, fmt.Errorf("groupchat: %q is not supported (muclight)", g))
		}
	}
	if c.Linger.Duration < 0 || c.Linger.Duration > time.Second {
		errs = append(errs, errors.New("linger: must be between 0 and 1s"))
	}
	if c.Writes != WritesBatch && c.Writes != WritesSync {
		errs = append(errs, fmt.Errorf("writes: %q is neither %s nor %s", c.Writes, WritesBatch, WritesSync))
	}
	if c.MaxResultLimit < 0 {
		errs = append(errs, errors.New("max_result_limit: must not be negative"))
	}
	if c.MaxResultBytes < 0 {
		errs = append(errs, errors.New("max_result_bytes: must not be negative"))
	}
	if c.BinTTL.Duration < 0 {
		errs = append(errs, errors.New("bin_ttl: must not be negative"))
	}
	if c.BinTTL.Duration > 0 && c.BinCleanInterval.Duration <= 0 {
		errs = append(errs, errors.New("bin_clean_interval: must be positive when bin_ttl is set"))
	}
	return errs
}

// DefaultConfig is the configuration without a [modules.inbox] section.
func DefaultConfig() Config {
	return Config{
		ResetMarkers:     []string{"displayed"},
		Groupchat:        []string{GroupchatMUCLight},
		AffChanges:       true,
		RemoveOnKicked:   true,
		MaxResultLimit:   1000,
		MaxResultBytes:   768 << 10,
		BinTTL:           config.Duration{Duration: 30 * 24 * time.Hour},
		BinCleanInterval: config.Duration{Duration: time.Hour},
		Writes:           WritesBatch,
		Linger:           config.Duration{Duration: 5 * time.Millisecond},
	}
}

func init() {
	module.Register(module.Factory{
		Name:             "inbox",
		Doc:              "Inbox (MongooseIM's erlang-solutions.com:xmpp:inbox:0): the conversation list with last messages and unread counts.",
		EnabledByDefault: true,
		Config:           func() any { c := DefaultConfig(); return &c },
		New:              func(cfg any) (module.Module, error) { return New(*cfg.(*Config)), nil },
	})
}

// Store is the storage the module uses (storage.InboxStore).
type Store interface {
	storage.InboxStore
}

// Inbox is the module.
type Inbox struct {
	cfg   Config
	store Store
	host  module.Host
	log   *slog.Logger
	now   func() time.Time

	boxes map[string]bool // every box name a client may use
	// boxOptions are the boxes as form options, in a stable order: the
	// reserved ones, then the configured ones.
	boxOptions []dataform.Option
	markers    map[string]bool
	mucl       bool

	writer *batch.Writer[storage.InboxOp] // nil with writes = "sync"
	// stamps hands out the times of updates: to the microsecond (what
	// is stored), and each later than the one before, so that no two
	// updates of this server have the same time and the RSM markers
	// (times) page exactly.
	stamps microclock.Clock

	stop chan struct{}
	wg   sync.WaitGroup
}

var _ module.Module = (*Inbox)(nil)

// New returns the module with a configuration.
func New(cfg Config) *Inbox {
	ib := &Inbox{cfg: cfg, now: time.Now, boxes: map[string]bool{}, markers: map[string]bool{}}
	for _, b := range append(slices.Clone(reservedBoxes), cfg.Boxes...) {
		ib.boxes[b] = true
		ib.boxOptions = append(ib.boxOptions, dataform.Option{Value: b})
	}
	for _, m := range cfg.ResetMarkers {
		ib.markers[m] = true
	}
	ib.mucl = slices.Contains(cfg.Groupchat, GroupchatMUCLight)
	return ib
}

// Start implements module.Module.
func (ib *Inbox) Start(ctx context.Context, env *module.Env) error {
	st, ok := env.Store.(Store)
	if !ok {
		return fmt.Errorf("inbox: the storage backend %T does not store inboxes", env.Store)
	}
	ib.store, ib.host, ib.log = st, env.Host, env.Logger
	if ib.log == nil {
		ib.log = slog.Default()
	}
	if ib.cfg.Writes != WritesSync {
		ib.writer = newWriter(ib.store, ib.log, ib.cfg.Linger.Duration, func() time.Time { return ib.stamps.Next(ib.now()) })
		// What the client sent is durable before the server says it
		// has it (XEP-0198 <a/>), and an account's queued writes land
		// before its data is deleted.
		env.Hooks.BeforeAck.Add(env.Owner, 0, func(ctx context.Context, _ module.Session) { ib.writer.Wait(ctx) })
		// The account's data is deleted before its sessions close: what
		// they queued in between is written, then removed.
		env.Hooks.UserRemoved.Add(env.Owner, 0, func(ctx context.Context, user jid.JID) {
			ib.writer.Wait(ctx)
			if err := ib.store.RemoveInbox(ctx, user); err != nil {
				ib.log.Error("inbox: removing the inbox of a removed account", "user", user.String(), "error", err)
			}
		})
	}
	// Discovery: the user's server lists the feature.
	env.Hooks.ServerFeatures.Add(env.Owner, 0, NS)
	env.Hooks.UserSend.Add(env.Owner, priority, ib.sent)
	env.Hooks.UserReceive.Add(env.Owner, priority, ib.received)
	err := errors.Join(
		env.Hooks.HandleIQ(env.Owner, stanza.IQGet, module.TargetSelf, NS, ib.queryForm),
		env.Hooks.HandleIQ(env.Owner, stanza.IQSet, module.TargetSelf, NS, ib.inboxSet),
		env.Hooks.HandleIQ(env.Owner, stanza.IQGet, module.TargetSelf, NSConversation, ib.conversationGet),
		env.Hooks.HandleIQ(env.Owner, stanza.IQSet, module.TargetSelf, NSConversation, ib.conversationSet),
	)
	if err != nil {
		ib.Stop()
		return fmt.Errorf("inbox: %w", err)
	}
	ib.stop = make(chan struct{})
	if ib.cfg.BinTTL.Duration > 0 {
		ib.wg.Add(1)
		go ib.binJanitor(ctx)
	}
	return nil
}

// Stop implements module.Module; it waits for the bin janitor to end and
// commits the writes still queued.
func (ib *Inbox) Stop() error {
	if ib.stop != nil {
		close(ib.stop)
		ib.wg.Wait()
		ib.stop = nil
	}
	if ib.writer != nil {
		ib.writer.Close()
	}
	return nil
}

// syncWrites waits until the writes queued so far are committed, so that
// a read sees them.
func (ib *Inbox) syncWrites(ctx context.Context) {
	if ib.writer != nil {
		ib.writer.Wait(ctx)
	}
}

// binJanitor purges the bins every bin_clean_interval of the entries put
// there more than bin_ttl ago. It ends when the module stops or the
// server's context ends.
func (ib *Inbox) binJanitor(ctx context.Context) {
	defer ib.wg.Done()
	t := time.NewTicker(ib.cfg.BinCleanInterval.Duration)
	defer t.Stop()
	for {
		ib.purgeBins(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ib.stop:
			return
		case <-t.C:
		}
	}
}

func (ib *Inbox) purgeBins(ctx context.Context) {
	n, err := ib.store.PurgeInboxBin(ctx, ib.now().Add(-ib.cfg.BinTTL.Duration))
	switch {
	case err != nil && ctx.Err() == nil:
		ib.log.Error("inbox: purging the bins", "error", err)
	case n > 0:
		ib.log.Info("inbox: purged old entries from the bins", "entries", n)
	}
}

// isAccount reports whether j has a local part (an account or
// a room).
func isAccount(j jid.JID) bool { return !j.IsZero() && j.Local() != "" }
