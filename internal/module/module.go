// Package module is how a feature plugs into Meerkat: the Module interface,
// the registry modules add themselves to, the hooks they attach to stanza
// and session events, and the Host they act through.
//
// A module is one package under internal/modules/. It registers a factory
// once (module.Register in an init function, pulled in by a blank import in
// internal/modules/all) and, when the server starts it, attaches its
// handlers to the Hooks with its own name as owner. Stopping a module
// removes every handler it attached (Hooks.RemoveOwner), so a disabled
// module leaves no trace: no IQ handler, no stream feature, no disco
// feature.
package module

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/BurntSushi/toml"

	"github.com/meerkat-xmpp/meerkat/jid"
)

// Module is a feature of the server.
type Module interface {
	// Start attaches the module's handlers. ctx ends when the server stops.
	Start(ctx context.Context, env *Env) error
	// Stop releases what Start acquired; the handlers are removed by the
	// caller.
	Stop() error
}

// Factory creates a module from its configuration section.
type Factory struct {
	// Name is the module's name in the configuration ([modules.<name>])
	// and the owner of its hooks.
	Name string
	// Doc is a one-line description, printed by `meerkat config print`.
	Doc string
	// EnabledByDefault says whether the module runs without configuration.
	EnabledByDefault bool
	// Config returns a pointer to the module's configuration with its
	// defaults, decoded from [modules.<name>]; nil if it has none. Fields
	// use `toml` tags and a `comment` tag for `meerkat config print`.
	Config func() any
	// New creates the module with its decoded configuration (nil if none).
	New func(cfg any) (Module, error)
}

// Dependent is implemented by a module that needs what another module
// provides (a Service of Hooks, such as the roster module's
// RosterChange). Modules start in name order, so the provider may start
// after the module that needs it: the server calls CheckDependencies
// once every module has started, and an error stops the start as one
// of Start does.
type Dependent interface {
	CheckDependencies(env *Env) error
}

// Validator is implemented by module configurations that can check
// themselves; Validate returns every problem found.
type Validator interface {
	Validate() []error
}

var (
	registryMu sync.Mutex
	registry   = map[string]Factory{}
)

// Register adds a module factory; modules call it from init.
func Register(f Factory) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[f.Name]; dup {
		panic("module: " + f.Name + " registered twice")
	}
	registry[f.Name] = f
}

// Factories returns the registered factories sorted by name.
func Factories() []Factory {
	registryMu.Lock()
	defer registryMu.Unlock()
	out := make([]Factory, 0, len(registry))
	for _, f := range registry {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup returns the factory of a module.
func Lookup(name string) (Factory, bool) {
	registryMu.Lock()
	defer registryMu.Unlock()
	f, ok := registry[name]
	return f, ok
}

// Section is the raw configuration of one module: its `enabled` switch and
// the rest of its keys, decoded by DecodeConfig.
type Section struct {
	Enabled *bool
	Prim    toml.Primitive
	Meta    *toml.MetaData
	Present bool
}

// DecodeConfig decodes a module's section into its configuration struct
// and reports unknown keys.
func DecodeConfig(f Factory, s Section) (any, []error) {
	if f.Config == nil {
		return nil, nil
	}
	cfg := f.Config()
	if !s.Present {
		return cfg, validate(f, cfg)
	}
	if err := s.Meta.PrimitiveDecode(s.Prim, cfg); err != nil {
		return nil, []error{fmt.Errorf("modules.%s: %w", f.Name, err)}
	}
	return cfg, validate(f, cfg)
}

func validate(f Factory, cfg any) []error {
	v, ok := cfg.(Validator)
	if !ok {
		return nil
	}
	var errs []error
	for _, err := range v.Validate() {
		errs = append(errs, fmt.Errorf("modules.%s: %w", f.Name, err))
	}
	return errs
}

// Env is what a running module gets: the host to act through, its hooks,
// storage and a logger.
type Env struct {
	Host     Host
	Hooks    *Hooks
	Owner    string   // the module's name; pass it when attaching hooks
	Store    any      // the storage backend; assert it to the module's own store interface
	Accounts Accounts // account management, as `meerkat user` does it
	Logger   *slog.Logger
}

// Accounts manages accounts the way the administration commands do:
// passwords become SCRAM secrets, and removing an account runs the
// UserRemoving and UserRemoved hooks, closes its sessions and deletes its
// data.
type Accounts interface {
	// Create creates an account; it fails if it exists.
	Create(ctx context.Context, user jid.JID, password string) error
	// SetPassword replaces an account's password.
	SetPassword(ctx context.Context, user jid.JID, password string) error
	// Remove deletes an account and everything of it.
	Remove(ctx context.Context, user jid.JID) error
}
