package config_test

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/meerkat-xmpp/meerkat/internal/config"
	_ "github.com/meerkat-xmpp/meerkat/internal/modules/all"
)

func TestDefaultIsValid(t *testing.T) {
	cfg := config.Default()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestPrintRoundTrip: `meerkat config print` is a valid file that gives
// back the defaults, with a comment for every key.
func TestPrintRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := config.Print(&buf, config.Default()); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	cfg, err := config.Parse(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("printed config invalid: %v\n%s", err, out)
	}
	cfg.Modules = nil
	if !reflect.DeepEqual(cfg, config.Default()) {
		t.Fatalf("round trip changed the config:\n%+v\n%+v", cfg, config.Default())
	}
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if strings.Contains(l, " = ") && (i == 0 || !strings.HasPrefix(lines[i-1], "#")) {
			t.Errorf("line %d has no comment: %s", i+1, l)
		}
	}
	for _, want := range []string{"[c2s]", "[modules.ping]", "[modules.disco]", "interval = \"2m0s\""} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q", want)
		}
	}
}

func TestEveryErrorAtOnce(t *testing.T) {
	doc := `
domains = ["example.com", "Bad Domain", "example.com"]
log_level = "loud"
log_format = "xml"
[c2s]
starttls_addr = "nonsense"
max_stanza_bytes = 100
max_sessions_per_user = 0
sasl_mechanisms = ["SCRAM-SHA-256", "MD5"]
[tls]
cert_file = "x.pem"
[storage]
backend = "oracle"
[modules.ping]
interval = "-1s"
color = "blue"
[modules.nosuch]
enabled = true
`
	cfg, err := config.Parse(doc)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	err = cfg.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`"Bad Domain" is not a domain name`, `"example.com" is listed twice`, "log_level", "log_format",
		"c2s.starttls_addr", "c2s.max_stanza_bytes", "c2s.max_sessions_per_user", "c2s.sasl_mechanisms",
		"cert_file and key_file", "storage.backend", "modules.ping: interval", "unknown setting modules.ping.color",
		"modules.nosuch: no such module",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestUnknownKeys(t *testing.T) {
	_, err := config.Parse("domain = \"x\"\n[c2s]\nport = 1\n")
	if err == nil || !strings.Contains(err.Error(), "unknown setting domain") || !strings.Contains(err.Error(), "unknown setting c2s.port") {
		t.Fatalf("error = %v", err)
	}
	if _, err := config.Parse("domains = [1"); err == nil {
		t.Fatal("syntax error accepted")
	}
}

func TestModulesEnabledAndConfigured(t *testing.T) {
	cfg, err := config.Parse("[modules.ping]\nenabled = false\n[modules.disco]\nname = \"Zoo\"\n")
	if err != nil {
		t.Fatal(err)
	}
	mods, err := cfg.DecodeModules()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]any{}
	for _, m := range mods {
		names[m.Factory.Name] = m.Config
	}
	if _, on := names["ping"]; on {
		t.Error("ping enabled")
	}
	if d, ok := names["disco"]; !ok || !strings.Contains(reflect.ValueOf(d).Elem().Field(0).String(), "Zoo") {
		t.Errorf("disco config = %#v", d)
	}
}

// TestParseOver: a second document changes what it sets and keeps the
// rest, module sections included; the base is left as it was.
func TestParseOver(t *testing.T) {
	base, err := config.Parse("domains = [\"a.example\", \"b.example\"]\n[c2s]\nmax_auth_failures = 7\n[modules.ping]\nenabled = false\n")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.ParseOver(base, "domains = [\"c.example\"]\n[http]\norigins = [\"https://x.example\"]\n[modules.disco]\nname = \"Zoo\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Domains, " ") != "c.example" || cfg.C2S.MaxAuthFailures != 7 || strings.Join(cfg.HTTP.Origins, " ") != "https://x.example" {
		t.Errorf("merged: domains %v, max_auth_failures %d, origins %v", cfg.Domains, cfg.C2S.MaxAuthFailures, cfg.HTTP.Origins)
	}
	if strings.Join(base.Domains, " ") != "a.example b.example" || strings.Join(base.HTTP.Origins, " ") != "*" || len(base.Modules) != 1 {
		t.Errorf("base changed: domains %v, origins %v, modules %v", base.Domains, base.HTTP.Origins, base.Modules)
	}
	mods, err := cfg.DecodeModules()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, m := range mods {
		names[m.Factory.Name] = true
	}
	if names["ping"] || !names["disco"] {
		t.Errorf("modules: %v", names)
	}
	if _, err := config.ParseOver(base, "[c2s]\nno_such_setting = 1\n"); err == nil {
		t.Error("unknown setting accepted")
	}
}

func TestLoadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.toml")
	os.WriteFile(path, []byte("domains = [\"chat.example\"]\n[c2s]\nidle_timeout = \"90s\"\n"), 0o600)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Domains[0] != "chat.example" || cfg.C2S.IdleTimeout.Seconds() != 90 || cfg.C2S.Addr != ":5222" {
		t.Fatalf("%+v", cfg)
	}
	if _, err := config.Load(filepath.Join(t.TempDir(), "missing.toml")); err == nil {
		t.Fatal("missing file accepted")
	}
}
