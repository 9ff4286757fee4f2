package module

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

func TestHookListOrder(t *testing.T) {
	var l HookList[func() string]
	l.Add("a", 0, func() string { return "a0" })
	l.Add("b", 10, func() string { return "b10" })
	l.Add("c", 0, func() string { return "c0" })
	l.Add("d", -5, func() string { return "d-5" })
	var order []string
	for _, h := range l.Hooks() {
		order = append(order, h.Fn())
	}
	// Higher priority first, then in the order added.
	if strings.Join(order, " ") != "b10 a0 c0 d-5" {
		t.Fatalf("order %v", order)
	}
	before := l.Hooks()
	l.RemoveOwner("a")
	if l.Len() != 3 || len(before) != 4 {
		t.Fatal("RemoveOwner changed a slice already handed out, or removed nothing")
	}
}

func TestRunStanzaStops(t *testing.T) {
	var l HookList[StanzaHook]
	var ran []string
	l.Add("first", 1, func(context.Context, *StanzaEvent) Result { ran = append(ran, "first"); return Continue })
	l.Add("stop", 0, func(context.Context, *StanzaEvent) Result { ran = append(ran, "stop"); return Stop })
	l.Add("never", -1, func(context.Context, *StanzaEvent) Result { ran = append(ran, "never"); return Continue })
	if RunStanza(context.Background(), &l, &StanzaEvent{}) != Stop || strings.Join(ran, ",") != "first,stop" {
		t.Fatalf("ran %v", ran)
	}
}

func TestIQRegistry(t *testing.T) {
	var h Hooks
	fn := func(context.Context, *IQ) (*xmlstream.Element, error) { return nil, nil }
	if err := h.HandleIQ("m", stanza.IQGet, TargetBare, "urn:x", fn); err != nil {
		t.Fatal(err)
	}
	if err := h.HandleIQ("other", stanza.IQGet, TargetBare, "urn:x", fn); err == nil {
		t.Error("duplicate accepted")
	}
	if err := h.HandleIQ("m", stanza.IQResult, TargetHost, "urn:x", fn); err == nil {
		t.Error("handler for results accepted")
	}
	// A bare handler serves self unless a self handler exists.
	if h.IQHandler(stanza.IQGet, TargetSelf, "urn:x") == nil || h.IQHandler(stanza.IQSet, TargetBare, "urn:x") != nil {
		t.Error("lookup")
	}
	if h.IQHandler(stanza.IQGet, TargetStream, "urn:x") != nil || h.IQHandler(stanza.IQGet, TargetHost, "urn:x") != nil {
		t.Error("bare handler answers for other targets")
	}
	if err := h.HandleNonza("m", "active", "urn:xmpp:csi:0", func(context.Context, Session, *xmlstream.Element) {}); err != nil {
		t.Fatal(err)
	}
	if h.HandleNonza("x", "active", "urn:xmpp:csi:0", nil) == nil || h.NonzaHandler("active", "urn:xmpp:csi:0") == nil {
		t.Error("nonza registry")
	}
	h.ServerFeatures.Add("m", 0, "urn:x")
	h.SessionOpened.Add("m", 0, func(context.Context, Session) {})
	h.RosterItem.Add("r", 0, func(context.Context, jid.JID, *xmlstream.Element) {})
	if !h.Owners()["m"] || !h.Owners()["r"] {
		t.Fatal("owner not listed")
	}
	h.RemoveOwner("r")
	if h.RosterItem.Len() != 0 || h.Owners()["r"] {
		t.Fatal("RosterItem hook left behind")
	}
	h.RemoveOwner("m")
	if len(h.Owners()) != 0 || h.IQHandler(stanza.IQGet, TargetBare, "urn:x") != nil || h.NonzaHandler("active", "urn:xmpp:csi:0") != nil {
		t.Fatalf("left behind: %v", h.Owners())
	}
	for _, tg := range []Target{TargetHost, TargetSelf, TargetBare, TargetStream} {
		if tg.String() == "" {
			t.Error("empty target name")
		}
	}
}

type testConfig struct {
	Size int `toml:"size"`
}

func (c *testConfig) Validate() []error {
	if c.Size < 0 {
		return []error{errors.New("size: negative")}
	}
	return nil
}

func TestDecodeConfig(t *testing.T) {
	f := Factory{Name: "t", Config: func() any { return &testConfig{Size: 7} }}
	cfg, errs := DecodeConfig(f, Section{})
	if len(errs) != 0 || cfg.(*testConfig).Size != 7 {
		t.Fatalf("defaults: %v %v", cfg, errs)
	}
	var raw struct{ T toml.Primitive }
	meta, err := toml.Decode("[t]\nsize = -3\n", &raw)
	if err != nil {
		t.Fatal(err)
	}
	cfg, errs = DecodeConfig(f, Section{Prim: raw.T, Meta: &meta, Present: true})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "modules.t: size: negative") || cfg.(*testConfig).Size != -3 {
		t.Fatalf("decoded %v %v", cfg, errs)
	}
	if cfg, errs := DecodeConfig(Factory{Name: "none"}, Section{}); cfg != nil || errs != nil {
		t.Fatal("module without configuration")
	}
}

func TestRegistry(t *testing.T) {
	Register(Factory{Name: "registry-test"})
	// Unregistered at the end, so that the test can run again (-count).
	t.Cleanup(func() { registryMu.Lock(); delete(registry, "registry-test"); registryMu.Unlock() })
	if _, ok := Lookup("registry-test"); !ok {
		t.Fatal("not registered")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("registering twice did not panic")
		}
	}()
	Register(Factory{Name: "registry-test"})
}

// TestService: one provider at a time, removed with its owner only.
func TestService(t *testing.T) {
	var h Hooks
	if _, ok := h.RosterChange.Get(); ok {
		t.Fatal("a service nobody provides")
	}
	fn := func(context.Context, RosterChange) (bool, error) { return true, nil }
	if err := h.RosterChange.Provide("roster", fn); err != nil {
		t.Fatal(err)
	}
	if err := h.RosterChange.Provide("other", fn); err == nil {
		t.Error("a second provider accepted")
	}
	if !h.Owners()["roster"] {
		t.Error("the provider is not an owner")
	}
	h.RemoveOwner("other")
	if got, ok := h.RosterChange.Get(); !ok {
		t.Fatal("removed with another owner")
	} else if changed, _ := got(context.Background(), RosterChange{}); !changed {
		t.Fatal("not the function provided")
	}
	h.RemoveOwner("roster")
	if _, ok := h.RosterChange.Get(); ok || h.Owners()["roster"] {
		t.Fatal("still provided after its owner was removed")
	}
	if err := h.RosterChange.Provide("other", fn); err != nil {
		t.Fatalf("a new provider after removal: %v", err)
	}
}
