// Package config holds Meerkat's configuration: the structure with its
// defaults, loading from TOML, validation that reports every problem at
// once, and printing the defaults as a commented file.
//
// Module settings live under [modules.<name>]; each module declares its
// own configuration struct (module.Factory.Config), so this package only
// keeps the raw sections and hands them to the modules.
package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/meerkat-xmpp/meerkat/internal/module"
	"github.com/meerkat-xmpp/meerkat/internal/sasl"
	"github.com/meerkat-xmpp/meerkat/jid"
)

// Config is the whole configuration.
type Config struct {
	Domains   []string `toml:"domains" comment:"Domains served (virtual hosts). Users are user@domain."`
	DataDir   string   `toml:"data_dir" comment:"Directory for the database, the generated certificate and other state."`
	LogLevel  string   `toml:"log_level" comment:"debug, info, warn or error."`
	LogFormat string   `toml:"log_format" comment:"text or json."`

	C2S     C2S     `toml:"c2s" comment:"Client connections (RFC 6120)."`
	TLS     TLS     `toml:"tls" comment:"Certificate for c2s and HTTPS. Empty: a self-signed one is generated in data_dir/tls."`
	HTTP    HTTP    `toml:"http" comment:"HTTP listener (WebSocket, BOSH, metrics and admin API as they arrive)."`
	Storage Storage `toml:"storage" comment:"Where data is kept."`

	// Modules holds the raw [modules.<name>] sections.
	Modules map[string]module.Section `toml:"-"`
}

// C2S configures client connections.
type C2S struct {
	Addr               string   `toml:"starttls_addr" comment:"Address for STARTTLS connections; empty disables."`
	TLSAddr            string   `toml:"tls_addr" comment:"Address for direct TLS connections (XEP-0368); empty disables."`
	RequireTLS         bool     `toml:"require_tls" comment:"Require STARTTLS before authentication."`
	SASLMechanisms     []string `toml:"sasl_mechanisms" comment:"SASL mechanisms offered, in order of preference."`
	MaxStanzaBytes     int      `toml:"max_stanza_bytes" comment:"Largest stanza a client may send, in bytes."`
	MaxDepth           int      `toml:"max_depth" comment:"Deepest element nesting in a stanza."`
	MaxAttributes      int      `toml:"max_attributes" comment:"Most attributes on one element."`
	HandshakeTimeout   Duration `toml:"handshake_timeout" comment:"Time allowed from connecting to a bound resource."`
	IdleTimeout        Duration `toml:"idle_timeout" comment:"Close sessions silent for this long (0: never; see the ping module)."`
	MaxAuthFailures    int      `toml:"max_auth_failures" comment:"Failed SASL attempts before the stream is closed."`
	MaxSessionsPerUser int      `toml:"max_sessions_per_user" comment:"Most resources one account may bind at once."`
	MaxOutboundBytes   int      `toml:"max_outbound_bytes" comment:"Data queued for a client that does not read before it is disconnected."`
	RateBytesPerSecond int      `toml:"rate_bytes_per_second" comment:"Most bytes per second a client may send (0: no limit); faster clients are read more slowly."`

	SMMaxUnacked       int      `toml:"sm_max_unacked" comment:"Stream management (XEP-0198): stanzas kept until the client acknowledges them; one more closes the stream with the error <resource-constraint/> (\"too many unacknowledged stanzas\") and the queue is rerouted (another resource, offline storage)."`
	SMAckEvery         int      `toml:"sm_ack_every" comment:"Ask the client for an acknowledgement after this many stanzas…"`
	SMAckInterval      Duration `toml:"sm_ack_interval" comment:"…or when stanzas have waited this long."`
	SMResumeTimeout    Duration `toml:"sm_resume_timeout" comment:"How long a session whose connection broke can be resumed."`
	SMMaxResumeTimeout Duration `toml:"sm_max_resume_timeout" comment:"The longest resumption time a client may ask for."`
	SMRememberEnded    Duration `toml:"sm_remember_ended" comment:"How long the count of a session that ended is kept, for the <failed h='…'/> answer to a late resumption (XEP-0198 §5)."`
	SMMaxRemembered    int      `toml:"sm_max_remembered" comment:"The most ended sessions whose count is kept (the oldest go first); 0 keeps none."`

	// SMCounterStart starts the XEP-0198 counters there instead of 0, for
	// tests of their wrap-around at 2^32; it cannot be set from a file.
	SMCounterStart uint32 `toml:"-"`
}

// TLS configures certificates.
type TLS struct {
	CertFile string `toml:"cert_file" comment:"PEM certificate chain."`
	KeyFile  string `toml:"key_file" comment:"PEM private key."`
}

// HTTP configures the HTTP listeners (WebSocket, BOSH, admin API).
type HTTP struct {
	Addr           string   `toml:"addr" comment:"Address of the HTTP listener; empty disables."`
	TLSAddr        string   `toml:"tls_addr" comment:"Address of the HTTPS listener, with the c2s certificate (wss://, https://); empty disables."`
	Origins        []string `toml:"origins" comment:"Web origins allowed to use WebSocket and BOSH besides the server's own; \"*\" for any."`
	BOSHMaxWait    Duration `toml:"bosh_max_wait" comment:"Longest a BOSH request is held waiting for data (XEP-0124 'wait')."`
	BOSHInactivity Duration `toml:"bosh_inactivity" comment:"A BOSH session with no request for this long is over (XEP-0124 §10)."`
	BehindTLSProxy bool     `toml:"behind_tls_proxy" comment:"Plain-HTTP requests come through a proxy that terminated TLS: treat them as encrypted."`
	Pprof          bool     `toml:"pprof" comment:"Serve Go's profiler at /debug/pprof/ (CPU, heap, goroutines), for performance work; only with the listeners on loopback or behind an access control."`
}

// Storage configures the backend.
type Storage struct {
	Backend     string `toml:"backend" comment:"sqlite (embedded)."`
	SQLitePath  string `toml:"sqlite_path" comment:"SQLite database file; empty: data_dir/meerkat.db."`
	Synchronous string `toml:"sqlite_synchronous" comment:"NORMAL survives a crash of the process, FULL also a power loss."`
}

// Duration is a time.Duration written as "30s", "10m" in TOML.
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Default returns the configuration used without a file.
func Default() Config {
	return Config{
		Domains:   []string{"localhost"},
		DataDir:   "meerkat-data",
		LogLevel:  "info",
		LogFormat: "text",
		C2S: C2S{
			Addr:               ":5222",
			TLSAddr:            ":5223",
			RequireTLS:         true,
			SASLMechanisms:     sasl.DefaultMechanisms(),
			MaxStanzaBytes:     64 << 10,
			MaxDepth:           64,
			MaxAttributes:      64,
			HandshakeTimeout:   Duration{30 * time.Second},
			IdleTimeout:        Duration{10 * time.Minute},
			MaxAuthFailures:    3,
			MaxSessionsPerUser: 32,
			MaxOutboundBytes:   1 << 20,
			RateBytesPerSecond: 0,
			SMMaxUnacked:       5000,
			SMAckEvery:         5,
			SMAckInterval:      Duration{30 * time.Second},
			SMResumeTimeout:    Duration{5 * time.Minute},
			SMMaxResumeTimeout: Duration{time.Hour},
			SMRememberEnded:    Duration{time.Hour},
			SMMaxRemembered:    100000,
		},
		HTTP: HTTP{Addr: ":5280", TLSAddr: ":5281", Origins: []string{"*"},
			BOSHMaxWait: Duration{60 * time.Second}, BOSHInactivity: Duration{60 * time.Second}},
		Storage: Storage{Backend: "sqlite", Synchronous: "NORMAL"},
	}
}

// Load reads a TOML file over the defaults. Unknown keys are errors; all
// problems are returned at once, joined.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return Parse(string(data))
}

// Parse reads a TOML document over the defaults (see Load).
func Parse(doc string) (Config, error) { return ParseOver(Default(), doc) }

// ParseOver reads a TOML document over base: the settings the document
// has replace those of base, and each [modules.<name>] section it has
// replaces base's section of that name.
func ParseOver(base Config, doc string) (Config, error) {
	cfg := base
	// The decoder writes arrays into the slices it finds when they are
	// large enough: base's must not change.
	cfg.Domains = slices.Clone(base.Domains)
	cfg.C2S.SASLMechanisms = slices.Clone(base.C2S.SASLMechanisms)
	cfg.HTTP.Origins = slices.Clone(base.HTTP.Origins)
	var raw struct {
		Config
		Modules map[string]toml.Primitive `toml:"modules"`
	}
	raw.Config = cfg
	meta, err := toml.Decode(doc, &raw)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	cfg = raw.Config
	cfg.Modules = maps.Clone(base.Modules)
	if cfg.Modules == nil {
		cfg.Modules = map[string]module.Section{}
	}
	var errs []error
	for name, prim := range raw.Modules {
		var sw struct {
			Enabled *bool `toml:"enabled"`
		}
		if err := meta.PrimitiveDecode(prim, &sw); err != nil {
			errs = append(errs, fmt.Errorf("modules.%s: %w", name, err))
			continue
		}
		cfg.Modules[name] = module.Section{Enabled: sw.Enabled, Prim: prim, Meta: &meta, Present: true}
	}
	// Module keys are decoded later, by DecodeModules; the rest must all be known.
	for _, key := range meta.Undecoded() {
		if len(key) >= 2 && key[0] == "modules" {
			continue
		}
		errs = append(errs, fmt.Errorf("unknown setting %s", key.String()))
	}
	if len(errs) > 0 {
		return cfg, errors.Join(errs...)
	}
	return cfg, nil
}

// EnabledModule is a module to run with its decoded configuration.
type EnabledModule struct {
	Factory module.Factory
	Config  any
}

// DecodeModules decodes the sections of the registered modules, reports
// unknown modules and settings, and returns the modules to run.
func (c *Config) DecodeModules() ([]EnabledModule, error) {
	var errs []error
	for name := range c.Modules {
		if _, ok := module.Lookup(name); !ok {
			errs = append(errs, fmt.Errorf("modules.%s: no such module", name))
		}
	}
	var out []EnabledModule
	checked := map[*toml.MetaData]bool{}
	for _, f := range module.Factories() {
		sec := c.Modules[f.Name]
		enabled := f.EnabledByDefault
		if sec.Enabled != nil {
			enabled = *sec.Enabled
		}
		cfg, merrs := module.DecodeConfig(f, sec)
		errs = append(errs, merrs...)
		if sec.Present {
			checked[sec.Meta] = true
		}
		if enabled && len(merrs) == 0 {
			out = append(out, EnabledModule{Factory: f, Config: cfg})
		}
	}
	for meta := range checked {
		for _, key := range meta.Undecoded() {
			if len(key) < 2 || key[0] != "modules" {
				continue
			}
			if _, known := module.Lookup(key[1]); known {
				errs = append(errs, fmt.Errorf("unknown setting %s", key.String()))
			}
		}
	}
	return out, errors.Join(errs...)
}

// Validate checks the configuration and returns every problem found.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.Domains) == 0 {
		bad("domains: at least one domain is needed")
	}
	seen := map[string]bool{}
	for _, d := range c.Domains {
		j, err := jid.Parse(d)
		switch {
		case err != nil || j.Local() != "" || j.Resource() != "":
			bad("domains: %q is not a domain name", d)
		case j.String() != d:
			bad("domains: write %q as %q", d, j.String())
		case seen[d]:
			bad("domains: %q is listed twice", d)
		}
		seen[d] = true
	}
	if c.DataDir == "" {
		bad("data_dir: must not be empty")
	}
	if _, err := ParseLevel(c.LogLevel); err != nil {
		bad("log_level: %v", err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log_format: %q is neither text nor json", c.LogFormat)
	}
	for _, a := range []struct{ key, addr string }{
		{"c2s.starttls_addr", c.C2S.Addr}, {"c2s.tls_addr", c.C2S.TLSAddr}, {"http.addr", c.HTTP.Addr}, {"http.tls_addr", c.HTTP.TLSAddr},
	} {
		if a.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			bad("%s: %v", a.key, err)
		}
	}
	if c.C2S.Addr == "" && c.C2S.TLSAddr == "" {
		bad("c2s: both starttls_addr and tls_addr are empty: no client could connect")
	}
	noLookup := func(context.Context, string) (sasl.Credentials, error) {
		return sasl.Credentials{}, sasl.ErrUnknownUser
	}
	if _, err := sasl.NewServer(sasl.Config{Mechanisms: c.C2S.SASLMechanisms}, noLookup); err != nil {
		bad("c2s.sasl_mechanisms: %v", err)
	}
	positive := []struct {
		key string
		v   int
	}{
		{"c2s.max_stanza_bytes", c.C2S.MaxStanzaBytes}, {"c2s.max_depth", c.C2S.MaxDepth},
		{"c2s.max_attributes", c.C2S.MaxAttributes}, {"c2s.max_auth_failures", c.C2S.MaxAuthFailures},
		{"c2s.max_sessions_per_user", c.C2S.MaxSessionsPerUser}, {"c2s.max_outbound_bytes", c.C2S.MaxOutboundBytes},
		{"c2s.sm_max_unacked", c.C2S.SMMaxUnacked}, {"c2s.sm_ack_every", c.C2S.SMAckEvery},
	}
	for _, p := range positive {
		if p.v <= 0 {
			bad("%s: must be positive", p.key)
		}
	}
	if c.C2S.MaxStanzaBytes > 0 && c.C2S.MaxStanzaBytes < 10<<10 {
		bad("c2s.max_stanza_bytes: RFC 6120 §13.12 requires at least 10000 bytes")
	}
	if c.C2S.RateBytesPerSecond < 0 {
		bad("c2s.rate_bytes_per_second: must not be negative")
	}
	if c.C2S.HandshakeTimeout.Duration <= 0 {
		bad("c2s.handshake_timeout: must be positive")
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"c2s.sm_ack_interval", c.C2S.SMAckInterval.Duration}, {"c2s.sm_resume_timeout", c.C2S.SMResumeTimeout.Duration},
		{"http.bosh_max_wait", c.HTTP.BOSHMaxWait.Duration}, {"http.bosh_inactivity", c.HTTP.BOSHInactivity.Duration}} {
		if d.v <= 0 {
			bad("%s: must be positive", d.key)
		}
	}
	if c.C2S.SMRememberEnded.Duration <= 0 {
		bad("c2s.sm_remember_ended: must be positive")
	}
	if c.C2S.SMMaxRemembered < 0 {
		bad("c2s.sm_max_remembered: must not be negative")
	}
	if c.C2S.SMMaxResumeTimeout.Duration < c.C2S.SMResumeTimeout.Duration {
		bad("c2s.sm_max_resume_timeout: must not be less than sm_resume_timeout")
	}
	if c.C2S.IdleTimeout.Duration < 0 {
		bad("c2s.idle_timeout: must not be negative")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls: cert_file and key_file go together")
	}
	switch c.Storage.Backend {
	case "sqlite":
		if s := strings.ToUpper(c.Storage.Synchronous); s != "NORMAL" && s != "FULL" {
			bad("storage.sqlite_synchronous: %q is neither NORMAL nor FULL", c.Storage.Synchronous)
		}
	default:
		bad("storage.backend: unknown backend %q", c.Storage.Backend)
	}
	if _, err := c.DecodeModules(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// SQLitePath is the database file in use.
func (c *Config) SQLitePath() string {
	if c.Storage.SQLitePath != "" {
		return c.Storage.SQLitePath
	}
	return filepath.Join(c.DataDir, "meerkat.db")
}

// ParseLevel reads a log level name.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	return l, err
}
