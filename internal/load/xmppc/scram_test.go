package xmppc

import (
	"path/filepath"
	"testing"

	xdg "github.com/xdg-go/scram"
)

// The client's conversation against xdg-go/scram's server, with the key
// cache: the second login derives nothing, and the cache survives a
// save and load.
func TestSCRAMAgainstServerAndCache(t *testing.T) {
	for _, c := range []struct {
		mech string
		h    xdg.HashGeneratorFcn
	}{{"SCRAM-SHA-1", xdg.SHA1}, {"SCRAM-SHA-256", xdg.SHA256}, {"SCRAM-SHA-512", xdg.SHA512}} {
		t.Run(c.mech, func(t *testing.T) {
			client, err := c.h.NewClient("alice", "pencil=,", "")
			if err != nil {
				t.Fatal(err)
			}
			creds := client.GetStoredCredentials(xdg.KeyFactors{Salt: "NaCl-salt-0123", Iters: 4096})
			server, err := c.h.NewServer(func(user string) (xdg.StoredCredentials, error) {
				if user != "alice" {
					t.Errorf("server asked for user %q", user)
				}
				return creds, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			keys := &KeyCache{}
			login := func(keys *KeyCache, pass string) error {
				conv := server.NewConversation()
				s, err := newSCRAM(c.mech, "alice", pass, keys)
				if err != nil {
					return err
				}
				sf, err := conv.Step(string(s.start()))
				if err != nil {
					return err
				}
				cf, err := s.step([]byte(sf))
				if err != nil {
					return err
				}
				fin, err := conv.Step(string(cf))
				if err != nil {
					return err
				}
				return s.verify([]byte(fin))
			}
			for range 3 {
				if err := login(keys, "pencil=,"); err != nil {
					t.Fatal(err)
				}
			}
			if n := keys.Derivations(); n != 1 {
				t.Fatalf("%d PBKDF2 derivations for 3 logins, want 1", n)
			}
			if err := login(keys, "wrong"); err == nil {
				t.Fatal("a wrong password was accepted")
			}
			path := filepath.Join(t.TempDir(), "keys")
			if err := keys.Save(path); err != nil {
				t.Fatal(err)
			}
			warm := &KeyCache{}
			if err := warm.Load(path); err != nil {
				t.Fatal(err)
			}
			if err := login(warm, "pencil=,"); err != nil || warm.Derivations() != 0 {
				t.Fatalf("login with a loaded cache: %v, %d derivations", err, warm.Derivations())
			}
		})
	}
}
