// Package muclight implements MUC Light (MongooseIM's urn:xmpp:muclight:0,
// summarised in ../shared/specs/muclight.md): invite-only group chat
// without presence, built for phones.
//
// There is no goroutine or process per room. Every stanza for the service
// is handled on the sender's goroutine: a room message reads the member
// list (storage, behind a cache that a membership change replaces) and
// routes one copy per member through the ordinary router; a change of
// configuration or membership is a compare-and-swap on the room's version
// string in storage, serialized per room on this node by a striped lock.
package muclight

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strings"
	"sync"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/storage"
	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Namespaces (muclight.md, the table at the top).
const (
	NS              = "urn:xmpp:muclight:0"
	NSCreate        = NS + "#create"
	NSDestroy       = NS + "#destroy"
	NSConfiguration = NS + "#configuration"
	NSAffiliations  = NS + "#affiliations"
	NSInfo          = NS + "#info"
	NSBlocking      = NS + "#blocking"
	NSMAM2          = "urn:xmpp:mam:2"
	NSMAM1          = "urn:xmpp:mam:1"
)

// Config configures the module; the option names are MongooseIM's
// (muclight.md "Service options").
type Config struct {
	Host                    string   `toml:"host" comment:"JID of the service; {domain} stands for each served domain."`
	MaxOccupants            int      `toml:"max_occupants" comment:"Members per room (0: no limit)."`
	RoomsPerUser            int      `toml:"rooms_per_user" comment:"Rooms one user may belong to (0: no limit)."`
	MaxFieldSize            int      `toml:"max_field_size" comment:"Bytes in one configuration field value (0: no limit)."`
	ConfigFields            []string `toml:"config_fields" comment:"The configuration fields of a room; others are refused with bad-request."`
	DefaultRoomName         string   `toml:"default_room_name" comment:"roomname of a room created without one."`
	AllowMultipleOwners     bool     `toml:"allow_multiple_owners" comment:"Off: a room has one owner, and making someone owner demotes the current one."`
	AllCanConfigure         bool     `toml:"all_can_configure" comment:"Members may change the configuration (otherwise only owners, except the subject)."`
	AllCanInvite            bool     `toml:"all_can_invite" comment:"Members may add members (never owners)."`
	EqualOccupants          bool     `toml:"equal_occupants" comment:"Rooms have no owner, the creator included."`
	PromoteOnLastOwnerLeave bool     `toml:"promote_on_last_owner_leave" comment:"When the last owner leaves, a member becomes owner; off: the leave is refused."`
	Blocking                bool     `toml:"blocking" comment:"The per-user blocking list of rooms and users."`
	RoomsInRosters          bool     `toml:"rooms_in_rosters" comment:"Rooms appear in their members' rosters (subscription to, group urn:xmpp:muclight:0)."`
	RoomsPerPage            int      `toml:"rooms_per_page" comment:"disco#items page size on the service (RSM)."`
	CacheSize               int      `toml:"cache_size" comment:"Rooms whose member list is kept in memory."`
}

// Validate implements module.Validator.
func (c *Config) Validate() []error {
	var errs []error
	if c.Host == "" {
		errs = append(errs, errors.New("host: empty"))
	} else if _, err := jid.Parse(strings.ReplaceAll(c.Host, "{domain}", "example.com")); err != nil || strings.ContainsAny(c.Host, "@/") {
		errs = append(errs, fmt.Errorf("host: %q is not a domain", c.Host))
	}
	for name, v := range map[string]int{"max_occupants": c.MaxOccupants, "rooms_per_user": c.RoomsPerUser, "max_field_size": c.MaxFieldSize} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative", name))
		}
	}
	if c.RoomsPerPage <= 0 {
		errs = append(errs, errors.New("rooms_per_page: must be positive"))
	}
	if c.CacheSize <= 0 {
		errs = append(errs, errors.New("cache_size: must be positive"))
	}
	if len(c.ConfigFields) == 0 {
		errs = append(errs, errors.New("config_fields: empty"))
	}
	for _, f := range c.ConfigFields {
		if f == "version" || f == "prev-version" {
			// muclight.md "Configuration": "The names version and
			// prev-version are reserved."
			errs = append(errs, fmt.Errorf("config_fields: %q is reserved", f))
		} else if f == "" || strings.ContainsAny(f, " <>&'\":") {
			errs = append(errs, fmt.Errorf("config_fields: %q is not an element name", f))
		}
	}
	return errs
}

// DefaultConfig returns the defaults.
func DefaultConfig() *Config {
	return &Config{
		Host:                    "muclight.{domain}",
		MaxOccupants:            1000,
		RoomsPerUser:            1000,
		MaxFieldSize:            1024,
		ConfigFields:            []string{"roomname", "subject"},
		DefaultRoomName:         "Untitled",
		PromoteOnLastOwnerLeave: true,
		Blocking:                true,
		RoomsPerPage:            10,
		CacheSize:               10000,
	}
}

func init() {
	module.Register(module.Factory{
		Name:             "muclight",
		Doc:              "MUC Light: group chat without presence (urn:xmpp:muclight:0).",
		EnabledByDefault: true,
		Config:           func() any { return DefaultConfig() },
		New:              func(cfg any) (module.Module, error) { return New(*cfg.(*Config)), nil },
	})
}

// Store is the storage the module uses (storage.MUCLightStore).
type Store = storage.MUCLightStore

// MUCLight is the module.
type MUCLight struct {
	cfg   Config
	rules Rules
	store Store
	host  module.Host
	hooks *module.Hooks
	log   *slog.Logger

	services map[string]bool // the service domains registered
	cache    *cache

	seed  maphash.Seed
	locks [256]sync.Mutex
}

var _ module.Module = (*MUCLight)(nil)

// New creates the module.
func New(cfg Config) *MUCLight {
	return &MUCLight{cfg: cfg, rules: Rules{
		MultipleOwners:          cfg.AllowMultipleOwners,
		AllCanInvite:            cfg.AllCanInvite,
		EqualOccupants:          cfg.EqualOccupants,
		PromoteOnLastOwnerLeave: cfg.PromoteOnLastOwnerLeave,
		MaxOccupants:            cfg.MaxOccupants,
	}}
}

// Start implements module.Module.
func (m *MUCLight) Start(ctx context.Context, env *module.Env) error {
	st, ok := env.Store.(Store)
	if !ok {
		return fmt.Errorf("muclight: the storage backend %T does not store MUC Light rooms", env.Store)
	}
	m.store, m.host, m.hooks, m.log = st, env.Host, env.Hooks, env.Logger
	m.seed = maphash.MakeSeed()
	m.cache = newCache(m.cfg.CacheSize)
	m.services = map[string]bool{}
	domains := env.Host.Domains()
	if !strings.Contains(m.cfg.Host, "{domain}") && len(domains) > 1 {
		return fmt.Errorf("muclight: host %q serves one domain; use {domain} with several", m.cfg.Host)
	}
	for _, d := range domains {
		svc := strings.ReplaceAll(m.cfg.Host, "{domain}", d)
		if m.services[svc] {
			continue
		}
		if err := env.Host.RegisterService(svc, m.serve); err != nil {
			m.unregister()
			return fmt.Errorf("muclight: %w", err)
		}
		m.services[svc] = true
		// muclight.md "Service discovery": "disco#items to the user's
		// server lists the service".
		env.Hooks.ServerItems.Add(env.Owner, 0, module.DiscoItem{JID: svc, Name: "MUC Light"})
	}
	// The account's memberships end with it, with the notifications a
	// leave makes, while its data is still there.
	env.Hooks.UserRemoving.Add(env.Owner, 0, m.userRemoving)
	if m.cfg.RoomsInRosters {
		// The rooms' items of a roster get carry the room's version
		// (muclight.md "Roster integration").
		env.Hooks.RosterItem.Add(env.Owner, 0, m.rosterItem)
	}
	return nil
}

// CheckDependencies implements module.Dependent: with rooms_in_rosters
// the rooms' items are written by the roster module (Hooks.RosterChange),
// which must be running.
func (m *MUCLight) CheckDependencies(env *module.Env) error {
	if !m.cfg.RoomsInRosters {
		return nil
	}
	if _, ok := env.Hooks.RosterChange.Get(); !ok {
		return errors.New("muclight: rooms_in_rosters needs the roster module, which is not enabled")
	}
	return nil
}

// Stop implements module.Module.
func (m *MUCLight) Stop() error {
	m.unregister()
	return nil
}

func (m *MUCLight) unregister() {
	for svc := range m.services {
		m.host.UnregisterService(svc)
	}
}

func (m *MUCLight) lockOf(room jid.JID) *sync.Mutex {
	return &m.locks[maphash.String(m.seed, room.String())%uint64(len(m.locks))]
}

// serve handles every stanza addressed to the service or its rooms, on the
// sender's goroutine.
func (m *MUCLight) serve(ctx context.Context, st *stanza.Stanza, from module.Session) {
	switch st.Kind {
	case stanza.KindPresence:
		// muclight.md "Rules": "presence sent to the service is ignored".
		return
	case stanza.KindMessage:
		m.message(ctx, st)
	case stanza.KindIQ:
		m.iq(ctx, st, from)
	}
}

// bounce answers st with an error, unless st is an error or a result
// (RFC 6120 §8.3.1).
func (m *MUCLight) bounce(ctx context.Context, st *stanza.Stanza, e *stanza.Error) {
	if st.IsError() || st.Kind == stanza.KindIQ && st.Type == stanza.IQResult || st.From.IsZero() {
		return
	}
	reply := stanza.ErrorReply(st.El, e)
	m.host.Route(ctx, &stanza.Stanza{El: reply, Kind: st.Kind, Type: "error", ID: st.ID, To: st.From, From: st.To})
}

// sendTo routes el (whose 'from' is set) to one recipient.
func (m *MUCLight) sendTo(ctx context.Context, el *xmlstream.Element, kind stanza.Kind, typ string, from, to jid.JID) {
	el.SetAttr("to", to.String())
	m.host.Route(ctx, &stanza.Stanza{El: el, Kind: kind, Type: typ, ID: el.Attr("id"), To: to, From: from})
}

// room is a snapshot of a room, shared read-only by the cache.
type room struct {
	storage.MUCLightRoom
	aff map[jid.JID]storage.MUCLightAffiliation
}

func newRoom(r storage.MUCLightRoom) *room {
	rm := &room{MUCLightRoom: r, aff: make(map[jid.JID]storage.MUCLightAffiliation, len(r.Members))}
	for _, o := range r.Members {
		rm.aff[o.User] = o.Affiliation
	}
	return rm
}

func (r *room) field(name string) string { return field(r.Config, name) }

// field is the value of a configuration field, "" when it is not set.
func field(cfg []storage.MUCLightField, name string) string {
	for _, f := range cfg {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// load returns a room from the cache or storage; nil when it does not
// exist. A miss is filled under the room's lock, so that a snapshot read
// before a change is never stored after it.
func (m *MUCLight) load(ctx context.Context, j jid.JID) (*room, error) {
	if r, ok := m.cache.get(j); ok {
		return r, nil
	}
	mu := m.lockOf(j)
	mu.Lock()
	defer mu.Unlock()
	if r, ok := m.cache.get(j); ok {
		return r, nil
	}
	return m.loadFresh(ctx, j)
}

// peek returns a room like load, but never waits for the room's lock:
// when another goroutine holds it, the room is read from storage and the
// cache is left alone. The RosterItem hook uses it: it runs under the
// roster module's lock of a user, which a room change (holding the room's
// lock) may be waiting for, to change that user's roster.
func (m *MUCLight) peek(ctx context.Context, j jid.JID) (*room, error) {
	if r, ok := m.cache.get(j); ok {
		return r, nil
	}
	mu := m.lockOf(j)
	if mu.TryLock() {
		defer mu.Unlock()
		if r, ok := m.cache.get(j); ok {
			return r, nil
		}
		return m.loadFresh(ctx, j)
	}
	return m.read(ctx, j)
}

// read reads a room from storage, leaving the cache alone; nil when it
// does not exist.
func (m *MUCLight) read(ctx context.Context, j jid.JID) (*room, error) {
	sr, err := m.store.MUCLightRoom(ctx, j)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("muclight: load %s: %w", j, err)
	}
	return newRoom(sr), nil
}

// loadFresh reads a room from storage and refreshes the cache; the
// caller holds the room's lock. Changes start from the stored state.
func (m *MUCLight) loadFresh(ctx context.Context, j jid.JID) (*room, error) {
	r, err := m.read(ctx, j)
	if err != nil {
		return nil, err
	}
	if r == nil {
		m.cache.drop(j)
		return nil, nil
	}
	m.cache.put(j, r)
	return r, nil
}

// blockers returns those of the newcomers a request names (the users
// of changes that are not removals) who blocked the room or the
// requester (muclight.md "Members": such a user "is skipped silently"),
// in one storage query, read before the room's lock is taken: whoever of
// them already is a member is not asked about (Rules.Apply).
func (m *MUCLight) blockers(ctx context.Context, changes []Change, room, requester jid.JID) (map[jid.JID]bool, error) {
	if !m.cfg.Blocking {
		return nil, nil
	}
	users := make([]jid.JID, 0, len(changes))
	for _, c := range changes {
		if c.Aff != None {
			users = append(users, c.User)
		}
	}
	if len(users) == 0 {
		return nil, nil
	}
	list, err := m.store.MUCLightBlockers(ctx, users, room, requester)
	if err != nil {
		return nil, fmt.Errorf("muclight: blocking lists: %w", err)
	}
	set := make(map[jid.JID]bool, len(list))
	for _, u := range list {
		set[u] = true
	}
	return set, nil
}
